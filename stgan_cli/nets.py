"""The networks of ST-GAN: warp generators, the PatchGAN discriminator and the iterative predictor.

Shapes follow the paper's code at 120x160; any ``(H, W)`` works (TensorFlow "SAME" padding is
reproduced, so odd sizes such as 15x20 halve to 8x10 as in the original).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import geometry

GEN_WIDTHS = (32, 64, 128, 256, 512)
DISC_WIDTHS = (32, 64, 128, 256, 512)
IN_CHANNELS = 7  # background RGB + warped foreground RGBA


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (output size ceil(n / stride))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = _same_pad(x.shape[-2], k, s)
        left, right = _same_pad(x.shape[-1], k, s)
        if top == bottom and left == right:
            # Symmetric padding is the convolution's own: no padded copy of the input (or of its
            # gradient), which was ~10% of a training step.
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _halve(x: torch.Tensor) -> torch.Tensor:
    # 2x2 average pool after zero-padding odd sizes at the bottom/right, as the original does.
    x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
    return F.avg_pool2d(x, 2)


def _halved_size(n: int, times: int) -> int:
    for _ in range(times):
        n = -(-n // 2)
    return n


class Generator(nn.Module):
    """One warp predictor: ``C(32)-C(64)-C(128)-C(256)-C(512)-L(256)-L(8)``.

    After every conv the 7-channel input, average-pooled to the same size, is concatenated to the
    features (the paper's multi-resolution input).  The last layer starts at zero, so an untrained
    generator predicts ``dp = 0``: the identity warp.
    """

    def __init__(self, image_size: tuple[int, int] = (120, 160)):
        super().__init__()
        self.convs = nn.ModuleList()
        ch = IN_CHANNELS
        for w in GEN_WIDTHS:
            self.convs.append(SameConv(ch, w, 4, stride=2))
            ch = w + IN_CHANNELS
        h, w = (_halved_size(n, len(GEN_WIDTHS)) for n in image_size)
        self.fc = nn.Linear(ch * h * w, 256)
        self.out = nn.Linear(256, 8)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, bg: torch.Tensor, fg_warped: torch.Tensor) -> torch.Tensor:
        """``bg`` (B, 3, H, W) and the currently warped ``fg_warped`` (B, 4, H, W) -> ``dp`` (B, 8)."""
        inp = torch.cat([bg, fg_warped], 1)
        feat = inp
        for conv in self.convs:
            inp = _halve(inp)
            feat = torch.cat([F.relu(conv(feat)), inp], 1)
        return self.out(F.relu(self.fc(feat.flatten(1))))


class Discriminator(nn.Module):
    """PatchGAN critic: ``C(32)..C(512)`` 4x4 stride 2 with leaky ReLU 0.2, then a 3x3 conv to one map."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for w in DISC_WIDTHS:
            layers += [SameConv(ch, w, 4, stride=2), nn.LeakyReLU(0.2)]
            ch = w
        layers.append(nn.Conv2d(ch, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Composite (B, 3, H, W) -> score map (B, 1, H/32, W/32); higher means more realistic."""
        return self.net(image)


@dataclass
class Prediction:
    """What the iterative predictor returns.

    ``params[i]`` is ``p`` after ``i`` generators (``params[0]`` is the initial ``p``), each (B, 8);
    ``warped[i]`` is the foreground canvas moved by ``params[i]``, each (B, 4, H, W).
    """

    params: list[torch.Tensor]
    warped: list[torch.Tensor]


class STGAN(nn.Module):
    """Generators ``G_1..G_N`` applied one after another; ``discriminator`` is optional (realism scores)."""

    def __init__(self, warps: int = 5, image_size: tuple[int, int] = (120, 160), discriminator: bool = True):
        super().__init__()
        self.image_size = tuple(image_size)
        self.generators = nn.ModuleList(Generator(self.image_size) for _ in range(warps))
        self.discriminator = Discriminator() if discriminator else None

    @property
    def warps(self) -> int:
        return len(self.generators)

    def forward(self, bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor | None = None,
                iterations: int | None = None, limit=None) -> Prediction:
        """Run the first ``iterations`` generators (all by default) on ``bg`` (B, 3, H, W) and the
        premultiplied foreground canvas ``fg`` (B, 4, H, W), starting from ``p0`` (B, 8; zeros).

        ``limit`` (a :class:`~stgan_cli.trust_region.TrustRegion`, inference only) shortens any
        update that would take the object outside it."""
        n = self.warps if iterations is None else iterations
        if not 0 <= n <= self.warps:
            raise ValueError(f"iterations must be in 0..{self.warps}, got {n}")
        p = bg.new_zeros(bg.shape[0], 8) if p0 is None else p0
        params, warped = [p], [geometry.warp_foreground(fg, p)]
        if limit is not None:
            limit.start(fg, p)
        for gen in self.generators[:n]:
            dp = gen(bg, warped[-1])
            p = geometry.compose(p, dp) if limit is None else limit(p, dp)
            params.append(p)
            warped.append(geometry.warp_foreground(fg, p))
        return Prediction(params, warped)
