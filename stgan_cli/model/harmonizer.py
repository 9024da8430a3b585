"""The learned harmonizer: from the composite at 120x160 and the object's mask, one colour transform
(:mod:`stgan_cli.core.colour_map`) that the object's full-resolution pixels go through.

What it reads: a small CNN over the composite and the mask, its features pooled over the object and
over the rest of the photo at two depths, plus the colour statistics that say most about a colour
change directly (per channel: mean, standard deviation and a soft 8-bin histogram of the object and
of a ring of background around it).  An MLP maps them to the transform's parameters; its last layer
starts at zero, so an untrained harmonizer changes nothing.

Torch-free parts (config, kind, the onnx runner) are in :mod:`stgan_cli.model.harmonizer_run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.colour_map import KNOTS, N_PARAMS
from . import kinds
from .kinds import FRAME, HARMONIZER as KIND, ONNX_FILE

BINS = 8


def _conv(cin: int, cout: int, stride: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


def _pool(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B, C, H, W) weighted by ``weight`` (B, 1, H', W', resized to x)."""
    w = F.interpolate(weight, size=x.shape[2:], mode="area")
    return (x * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-4)


def colour_stats(rgb: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per channel under ``weight``: mean, standard deviation and a soft histogram (:data:`BINS` bins)."""
    total = weight.sum((2, 3)).clamp_min(1e-4)
    mean = (rgb * weight).sum((2, 3)) / total
    std = ((((rgb - mean[..., None, None]) ** 2) * weight).sum((2, 3)) / total).clamp_min(1e-6).sqrt()
    centres = torch.linspace(0, 1, BINS, device=rgb.device).view(1, 1, BINS, 1, 1)
    soft = torch.exp(-((rgb[:, :, None] - centres) * (BINS - 1)) ** 2)  # (B, 3, BINS, H, W)
    soft = soft / soft.sum(2, keepdim=True)
    hist = (soft * weight[:, :, None]).sum((3, 4)) / total[..., None]
    return torch.cat([mean, std, hist.flatten(1)], 1)


class Harmonizer(nn.Module):
    """``backbone``: ``none``, or ``lite0``: EfficientNet-Lite0's ImageNet features (frozen, strides 8
    and 16) of the composite, pooled over the object and the rest, beside the small CNN's; they say
    what the object is, and so which colours it may have."""

    def __init__(self, width: int = 24, hidden: int = 256, backbone: str = "none", pretrained: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        w = width
        self.backbone = None
        extra = 0
        if backbone == "lite0":
            from .critic import frozen_backbone
            from .archs.efficientnet_lite import CHANNELS

            self.backbone = frozen_backbone(pretrained)
            extra = 2 * (CHANNELS[8] + CHANNELS[16])
        elif backbone != "none":
            from ..errors import StganError

            raise StganError(f"harmonizer backbone {backbone}: expected none or lite0")
        self.stem = nn.Sequential(_conv(4, w), _conv(w, 2 * w), _conv(2 * w, 2 * w, 1))
        self.mid = nn.Sequential(_conv(2 * w, 4 * w), _conv(4 * w, 4 * w, 1))
        self.deep = _conv(4 * w, 6 * w)
        n_stats = 2 * 3 * (2 + BINS)
        drop = [nn.Dropout(dropout)] if dropout else []
        self.head = nn.Sequential(nn.Linear(2 * (4 * w + 6 * w) + n_stats + extra, hidden), nn.SiLU(), *drop,
                                  nn.Linear(hidden, hidden), nn.SiLU(), *drop, nn.Linear(hidden, N_PARAMS))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        # How much of the predicted change is applied: chosen after training on photos it never
        # trained on (a net trained for the mean error is bolder than its knowledge; see training).
        self.register_buffer("strength", torch.ones(()))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.backbone is not None:  # frozen: its batch statistics stay ImageNet's
            self.backbone.eval()
        return self

    def forward(self, rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``rgb`` (B, 3, 120, 160) the composite in [0, 1], ``mask`` (B, 1, 120, 160) the object ->
        ``theta`` (B, N_PARAMS)."""
        # a colour change is global: half the frame's resolution is plenty, and 2 cores train it fast
        rgb, mask = F.avg_pool2d(rgb, 2), F.avg_pool2d(mask, 2)
        parts = []
        if self.backbone is not None:
            for f in self.backbone.features(rgb, (8, 16)):
                parts += [_pool(f, mask), _pool(f, 1 - mask)]
        around = (F.max_pool2d(mask, 9, 1, 4) - mask).clamp_min(0)
        rest = 1 - mask
        f1 = self.mid(self.stem(torch.cat([rgb - 0.5, mask], 1)))
        f2 = self.deep(f1)
        parts += [_pool(f1, mask), _pool(f1, rest), _pool(f2, mask), _pool(f2, rest),
                  colour_stats(rgb, mask), colour_stats(rgb, around)]
        return self.head(torch.cat(parts, 1)) * self.strength

    def predict(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """numpy in, numpy out: ``rgb`` (B, 3, H, W), ``mask`` (B, 1, H, W) at :data:`FRAME`."""
        with torch.no_grad():
            return self(torch.from_numpy(np.ascontiguousarray(rgb, np.float32)),
                        torch.from_numpy(np.ascontiguousarray(mask, np.float32))).numpy()


def _curves(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear curves per channel: ``x`` (B, 3, N) in [0, 1], ``values`` (B, 3, KNOTS)."""
    pos = x.clamp(0, 1) * (KNOTS - 1)
    i0 = pos.floor().clamp(max=KNOTS - 2)
    frac = pos - i0
    i0 = i0.long()
    v0, v1 = values.gather(2, i0), values.gather(2, i0 + 1)
    return v0 + frac * (v1 - v0)


def apply_torch(rgb: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """:func:`stgan_cli.core.colour_map.apply`, differentiable: ``rgb`` (B, 3, H, W), ``theta`` (B, P)."""
    b, _, h, w = rgb.shape
    grid = torch.linspace(0, 1, KNOTS, device=rgb.device)
    k = 3 * KNOTS
    curve1 = grid + theta[:, :k].view(b, 3, KNOTS)
    matrix = torch.eye(3, device=rgb.device) + theta[:, k:k + 9].view(b, 3, 3)
    offset = theta[:, k + 9:k + 12]
    curve2 = grid + theta[:, k + 12:].view(b, 3, KNOTS)
    x = _curves(rgb.reshape(b, 3, h * w), curve1)
    x = (matrix @ x + offset[..., None]).clamp(0, 1)
    return _curves(x, curve2).clamp(0, 1).view(b, 3, h, w)


# --- the model folder ------------------------------------------------------------------------------

def save(net: Harmonizer, folder: Path, config: dict, card: str | None = None) -> Path:
    """Write the harmonizer's model folder (float16 weights, config, card); each file lands whole."""
    import yaml
    from safetensors.torch import save_file

    from ..files import atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half().contiguous() for k, v in net.state_dict().items() if v.is_floating_point()}
    with atomic.replacing(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "library": "stgan"})
    with atomic.replacing(folder / "config.yaml") as tmp:
        Path(tmp).write_text(yaml.safe_dump({"kind": KIND, **config}, sort_keys=False))
    if card is not None:
        with atomic.replacing(folder / "README.md") as tmp:
            Path(tmp).write_text(card, encoding="utf-8")
    return folder


def load(folder: Path) -> Harmonizer:
    """The harmonizer of the model folder ``folder``, float32, in eval mode."""
    from safetensors.torch import load_file

    from ..errors import StganError

    cfg = kinds.read_config(folder, KIND, "a harmonizer")
    net = Harmonizer(width=int(cfg.get("width", 24)), hidden=int(cfg.get("hidden", 256)),
                     backbone=str(cfg.get("backbone", "none")), dropout=float(cfg.get("dropout", 0.0)))
    path = Path(folder) / "model.safetensors"
    try:
        state = load_file(str(path))
        missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except Exception as exc:  # noqa: BLE001
        raise StganError(f"{path}: not the weights of a harmonizer ({exc})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise StganError(f"{path}: not the weights of a harmonizer (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval()


def export_onnx(folder: Path) -> Path:
    """Write ``folder``'s ``model.onnx`` (composite and mask -> theta), stamped with the weights'
    SHA-256 and checked against PyTorch on random inputs."""
    import onnxruntime as ort

    from ..files import atomic
    from ..errors import StganError
    from . import onnx_graph

    folder = Path(folder)
    net = load(folder)
    rng = np.random.default_rng(0)
    rgb = rng.random((2, 3, *FRAME), dtype=np.float32)
    mask = np.zeros((2, 1, *FRAME), np.float32)
    mask[:, :, 30:90, 40:110] = 1
    with atomic.replacing(folder / ONNX_FILE) as tmp:
        onnx_graph.trace(net, (torch.from_numpy(rgb), torch.from_numpy(mask)), Path(tmp), ("rgb", "mask"), ("theta",), 18,
                     dynamic={"rgb": {0: "batch"}, "mask": {0: "batch"}})
        onnx_graph.stamp_digest(Path(tmp), folder)
        got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"rgb": rgb, "mask": mask})[0]
        want = net.predict(rgb, mask)
        if not np.allclose(got, want, atol=1e-4):
            raise StganError(f"{folder / ONNX_FILE}: the graph's transform differs from PyTorch's by "
                             f"{float(np.abs(got - want).max()):.2g}")
    return folder / ONNX_FILE
