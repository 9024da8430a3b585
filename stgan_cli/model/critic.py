"""The placement critic: how plausible an object is at each candidate box of a photo.

It reads the photo once and the object once, with EfficientNet-Lite0 (ImageNet weights, frozen, up
to its stride-16 stage), and judges every candidate box from the photo's features *around* the box
(the support below it, the wall or table above, the sides, the wider context), the photo's gist,
the box's geometry and the object's own features.  That is FOPA's factorisation (libcom): one pass
of the backbone scores thousands of boxes, where running the composite of each through the same
backbone costs a pass per box (200 boxes: 5-12 s on 2 cores).

What the box covers is never read.  Pairs cut from real photos hold a filled hole at the truth;
the critic is trained to rank the truth among *decoys*, boxes over holes of the same shape filled
the same way, so a hole says nothing, and the inside of a box is a hole in every comparison it
learns from.  Reading only the surroundings keeps it from learning what a hole looks like.

A model folder like the generators': ``config.yaml`` (``kind: placement-critic``),
``model.safetensors`` (float16, backbone included) and a ``README.md`` card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .archs.efficientnet_lite import CHANNELS, STRIDE_ENDS, EfficientNetLite0, load_imagenet
from .critic_run import FRAME, KIND, OBJECT, OnnxCritic, object_crop, read_config  # noqa: F401
from .kinds import ONNX_FILE

# Where the photo is read about a box, in the box's own units (0..1 across, 0..1 down): the support
# below it, above it, its sides, the wider context, and the middle of its bottom edge.
POINTS = ((0.2, 1.12), (0.5, 1.12), (0.8, 1.12), (0.5, 1.4), (0.5, 1.02),
          (0.2, -0.12), (0.5, -0.12), (0.8, -0.12),
          (-0.12, 0.3), (-0.12, 0.7), (1.12, 0.3), (1.12, 0.7),
          (-0.6, 0.5), (1.6, 0.5), (0.5, -0.6), (0.5, 2.0))
GEOMETRY = 7


def frozen_backbone(pretrained: bool) -> EfficientNetLite0:
    """Lite0 up to its stride-16 stage, ImageNet's weights when ``pretrained`` (the ``pretrained``
    extra, read at training start only), never trained."""
    net = EfficientNetLite0(head=False)
    if pretrained:
        load_imagenet(net)
    net._blocks = net._blocks[:STRIDE_ENDS[16] + 1]
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


class PlacementCritic(nn.Module):
    def __init__(self, pretrained: bool = False, width: int = 32):
        super().__init__()
        self.backbone = frozen_backbone(pretrained)
        c = CHANNELS[16] + CHANNELS[8] + 1
        self.point = nn.Sequential(nn.Linear(c, width), nn.ReLU(inplace=True))
        self.gist = nn.Sequential(nn.Linear(CHANNELS[16], width), nn.ReLU(inplace=True))
        self.thing = nn.Sequential(nn.Linear(2 * CHANNELS[16], width), nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(nn.Linear(width * (len(POINTS) + 2) + GEOMETRY, 256), nn.ReLU(inplace=True),
                                 nn.Dropout(0.1), nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Linear(128, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # ImageNet's batch statistics, always
        return self

    def score(self, photo: np.ndarray, crop: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Scores (N,) of ``boxes`` (N, 4) for ``crop`` (1, 3, 64, 64) on ``photo`` (1, 3, 120, 160),
        float32 arrays in and out (as :class:`OnnxCritic` takes them)."""
        with torch.no_grad():
            return Scorer(self).eval()(torch.from_numpy(photo), torch.from_numpy(crop),
                                       torch.from_numpy(np.asarray(boxes, np.float32))).numpy()

    @torch.no_grad()
    def photo_features(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stride-8 and stride-16 maps of photos ``rgb`` (B, 3, 120, 160) in [0, 1]."""
        f8, f16 = self.backbone.features(rgb, (8, 16))
        return f8, f16

    @torch.no_grad()
    def object_features(self, crop: torch.Tensor) -> torch.Tensor:
        """(B, 224): mean and max of the stride-16 map of object crops (B, 3, 64, 64) in [0, 1]."""
        (f16,) = self.backbone.features(crop, (16,))
        return torch.cat([f16.mean((2, 3)), f16.amax((2, 3))], 1)

    def forward(self, f8: torch.Tensor, f16: torch.Tensor, thing: torch.Tensor, boxes: torch.Tensor,
                index: torch.Tensor) -> torch.Tensor:
        """Scores (N,) of ``boxes`` (N, 4, normalised) on the photos ``index`` (N,) of the maps
        ``f8``/``f16`` (B, C, h, w), for the objects ``thing`` (B, 224)."""
        x1, y1, x2, y2 = boxes.unbind(1)
        u = torch.tensor([p[0] for p in POINTS], dtype=boxes.dtype, device=boxes.device)
        v = torch.tensor([p[1] for p in POINTS], dtype=boxes.dtype, device=boxes.device)
        px = x1[:, None] + u * (x2 - x1)[:, None]  # (N, P)
        py = y1[:, None] + v * (y2 - y1)[:, None]
        grid = torch.stack([2 * px - 1, 2 * py - 1], -1)[:, None]  # (N, 1, P, 2)
        sample = lambda f: F.grid_sample(f[index], grid, align_corners=False, padding_mode="border")[:, :, 0]  # noqa: E731
        inside = ((px >= 0) & (px <= 1) & (py >= 0) & (py <= 1)).to(boxes.dtype)[:, None]
        points = torch.cat([sample(f16), sample(f8), inside], 1).transpose(1, 2)  # (N, P, C)
        w, h = (x2 - x1).clamp_min(1e-4), (y2 - y1).clamp_min(1e-4)
        geometry = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, w, h, torch.log(w * h), y2, torch.log(w / h)], 1)
        parts = [self.point(points).flatten(1), self.gist(f16.mean((2, 3)))[index], self.thing(thing)[index], geometry]
        return self.mlp(torch.cat(parts, 1))[:, 0]


# --- the model folder ------------------------------------------------------------------------------

def save(critic: PlacementCritic, folder: Path, config: dict, card: str) -> Path:
    """Write the critic's model folder (weights in float16, backbone included); each file lands whole
    or not at all."""
    import yaml
    from safetensors.torch import save_file

    from ..files import atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half().contiguous() for k, v in critic.state_dict().items()
             if v.is_floating_point()}
    with atomic.replacing(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "library": "stgan"})
    with atomic.replacing(folder / "config.yaml") as tmp:
        Path(tmp).write_text(yaml.safe_dump({"kind": KIND, **config}, sort_keys=False))
    with atomic.replacing(folder / "README.md") as tmp:
        Path(tmp).write_text(card, encoding="utf-8")
    return folder


def load(folder: Path) -> PlacementCritic:
    """The critic of the model folder ``folder``, float32, in eval mode."""
    from safetensors.torch import load_file

    from ..errors import StganError

    read_config(folder)
    critic = PlacementCritic(pretrained=False)
    try:
        state = load_file(str(folder / "model.safetensors"))
        missing, unexpected = critic.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except Exception as exc:  # noqa: BLE001
        raise StganError(f"{folder / 'model.safetensors'}: not the weights of a placement critic ({exc})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise StganError(f"{folder / 'model.safetensors'}: not the weights of a placement critic "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return critic.eval()


# --- without PyTorch: the critic as one ONNX graph ----------------------------------------------------


class Scorer(nn.Module):
    """The critic as one function: (photo (1, 3, 120, 160), object crop (1, 3, 64, 64), boxes (N, 4))
    -> scores (N,)."""

    def __init__(self, critic: PlacementCritic):
        super().__init__()
        self.critic = critic

    def forward(self, photo: torch.Tensor, crop: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        f8, f16 = self.critic.backbone.features(photo, (8, 16))
        (o16,) = self.critic.backbone.features(crop, (16,))
        thing = torch.cat([o16.mean((2, 3)), o16.amax((2, 3))], 1)
        index = (boxes[:, 0] * 0).long()  # every box on the one photo
        return self.critic(f8, f16, thing, boxes, index)


def export_onnx(folder: Path) -> Path:
    """Write ``folder``'s ``model.onnx``: the critic of its safetensors as one graph, stamped with
    their SHA-256 and checked against PyTorch on random inputs."""
    import onnxruntime as ort

    from ..files import atomic
    from . import onnx_graph

    folder = Path(folder)
    critic = load(folder)
    rng = np.random.default_rng(0)
    photo = rng.random((1, 3, *FRAME), dtype=np.float32)
    crop = rng.random((1, 3, OBJECT, OBJECT), dtype=np.float32)
    boxes = np.sort(rng.random((7, 4)), 0).astype(np.float32)[:, [0, 1, 2, 3]]
    inputs = (torch.from_numpy(photo), torch.from_numpy(crop), torch.from_numpy(boxes))
    with atomic.replacing(folder / ONNX_FILE) as tmp:
        onnx_graph.trace(Scorer(critic).eval(), inputs, Path(tmp), ("photo", "object", "boxes"), ("scores",), 18,
                     dynamic={"photo": None, "crop": None, "boxes": {0: "boxes"}})
        onnx_graph.stamp_digest(Path(tmp), folder)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        for n in (7, 300):
            b = np.clip(np.sort(rng.random((n, 2, 2)), 1).reshape(n, 4)[:, [0, 2, 1, 3]], 0, 1).astype(np.float32)
            got = session.run(None, {"photo": photo, "object": crop, "boxes": b})[0]
            want = critic.score(photo, crop, b)
            if not np.allclose(got, want, atol=1e-3):
                from ..errors import StganError

                raise StganError(f"{folder / ONNX_FILE}: the graph's scores differ from PyTorch's by "
                                 f"{np.abs(got - want).max():.2g}")
    return folder / ONNX_FILE


