"""The paper's warp generators: ``N`` separate networks ``G_1..G_N``, applied one after another.

Shapes follow the paper's code at 120x160; any ``(H, W)`` works (TensorFlow "SAME" padding is
reproduced, so odd sizes such as 15x20 halve to 8x10 as in the original).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


GEN_WIDTHS = (32, 64, 128, 256, 512)
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


class PaperGenerators(nn.ModuleList):
    """ST-GAN as published: one :class:`Generator` per iteration, each trained in its own stage
    (``warp1..warpN``) starting as a copy of the one before."""

    arch_name = "paper"

    sequential_stages = True  # the trainer's warpK stages train generator K alone

    def __init__(self, warps: int, image_size: tuple[int, int]):
        super().__init__(Generator(image_size) for _ in range(warps))

    @property
    def iterations(self) -> int:
        return len(self)

    def update(self, i: int, bg: torch.Tensor, fg: torch.Tensor, warped: torch.Tensor, p: torch.Tensor,
               expm=None, detail=None) -> torch.Tensor:
        return self[i](bg, warped)

    def trained_by(self, stage_index: int | None) -> list[nn.Module]:
        """What a stage trains: generator ``stage_index`` (1-based), or all of them (None)."""
        return list(self) if stage_index is None else [self[stage_index - 1]]
