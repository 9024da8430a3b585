"""The networks of ST-GAN: the iterative predictor every architecture shares, and the PatchGAN
discriminator.  The warp predictors themselves are in :mod:`stgan_cli.model.archs`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import archs
from ..core import geometry
from .archs.paper import SameConv

DISC_WIDTHS = (32, 64, 128, 256, 512)


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
    """A warp predictor (``generators``, of architecture ``arch``) applied ``iterations`` times, and
    an optional ``discriminator`` (realism scores).

    :meth:`forward` runs :func:`iterate`, the one iterative loop of the project."""

    def __init__(self, warps: int = 5, image_size: tuple[int, int] = (120, 160), discriminator: bool = True,
                 arch: str = archs.DEFAULT):
        super().__init__()
        self.image_size = tuple(image_size)
        self.arch = arch
        self.generators = archs.build(arch, warps, self.image_size)
        self.discriminator = Discriminator() if discriminator else None

    @property
    def warps(self) -> int:
        return self.generators.iterations

    def forward(self, bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor | None = None,
                iterations: int | None = None, limit=None, expm=None, train_from: int | None = None,
                detail=None, **training) -> Prediction:
        """:func:`iterate` with this model's generators."""
        return iterate(self.generators, bg, fg, p0, iterations, limit, expm, train_from, detail, **training)


def iterate(generators, bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor | None = None,
            iterations: int | None = None, limit=None, expm=None, train_from: int | None = None,
            detail=None, *, block: int | None = None, detach: bool = False, autocast=None) -> Prediction:
    """The project's one iterative loop (inference, evaluation, training and export): ``iterations``
    updates of ``generators`` (all by default) on ``bg`` (B, 3, H, W) and the premultiplied
    foreground canvas ``fg`` (B, 4, H, W), starting from ``p0`` (B, 8; zeros).

    ``limit`` (a :class:`~stgan_cli.core.trust_region.TrustRegion`, inference only) shortens any update
    that would take the object outside it.  ``expm``: the matrix exponential (default
    ``torch.linalg.matrix_exp``; exports pass a series).  Training: updates before ``train_from``
    (1-based) run without gradients.  ``detail``: ``(bg, fg)`` of the same frame at a higher
    resolution, where the object's window is read from (``model.detail``; None: from the frame).

    Supervised pre-training runs it as a sequence of one update: ``block`` applies generator
    ``block`` (0-based) at every iteration, as many as asked; ``detach`` feeds each update the
    previous result without its graph (every iterate then answers for itself); ``autocast`` is the
    context the updates run in (mixed precision)."""
    n = generators.iterations if iterations is None else iterations
    if n < 0 or (block is None and n > generators.iterations):
        raise ValueError(f"iterations must be in 0..{generators.iterations}, got {n}")
    expm = expm or torch.linalg.matrix_exp
    warp = lambda p: geometry.warp_image(fg, expm(geometry.sl3_matrix(p)))
    p = bg.new_zeros(bg.shape[0], 8) if p0 is None else p0
    params, warped = [p], [warp(p)]
    if limit is not None:
        limit.start(fg, p)
    for i in range(n):
        with torch.set_grad_enabled(torch.is_grad_enabled() and (train_from is None or i + 1 >= train_from)):
            with autocast() if autocast is not None else contextlib.nullcontext():
                dp = generators.update(i if block is None else block, bg, fg, warped[-1], p, expm, detail)
            p = geometry.compose(p, dp) if limit is None else limit(p, dp)
        params.append(p)
        if detach:
            p = p.detach()
        warped.append(warp(p))
    return Prediction(params, warped)
