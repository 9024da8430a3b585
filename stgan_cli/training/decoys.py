"""Decoy holes: take away the filled hole as a cue to the truth in pairs cut from real photos.

A pair made by ``stgan data from-photos`` shows the object's true place as a smooth patch where it
was cut out.  A model trained on such pairs learns "move the object onto the patch", which no user's
photo offers (measured in issue 15: the default model aimed for the patch).  Here every such sample
gets a second patch of the same (dilated) shape, filled the same way, at the *mirror* of the truth
about the start: if the object is shown moved by ``M(p0)`` from the truth, the decoy sits at
``M(p0) @ M(p0) = M(2 p0)`` (sl(3) parameters add).  Seen from the start, the truth is ``M(p0)^-1``
away and the decoy ``M(p0)`` away, so the patches say nothing about which way to go; only the scene
does.  A sample that starts at the truth gets its decoy under the object itself, i.e. none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core import geometry


def push_pull_fill(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """``image`` (B, C, H, W) with ``hole`` (B, 1, H, W, bool) filled from the known pixels by
    push-pull, as :func:`stgan_cli.data.photos.pyramid_fill` fills the real holes: averages over ever
    coarser levels, blended back up.  Known pixels are returned unchanged."""
    known = (~hole).to(image.dtype)
    x = image * known
    levels = []
    while min(known.shape[-2:]) > 2:
        levels.append((x, known))
        # ceil_mode keeps the last row/column of an odd size; the weights cancel in x / known
        x = F.avg_pool2d(x, 2, ceil_mode=True)
        known = F.avg_pool2d(known, 2, ceil_mode=True)
    # a hole that spans the coarsest level takes the mean of everything known
    mean = x.sum((-2, -1), keepdim=True) / known.sum((-2, -1), keepdim=True).clamp_min(1e-6)
    colour = torch.where(known > 0, x / known.clamp_min(1e-6), mean)
    for x, known in reversed(levels):
        up = F.interpolate(colour, size=known.shape[-2:], mode="bilinear", align_corners=False)
        colour = known * (x / known.clamp_min(1e-6)) + (1 - known) * up
    return torch.where(hole, colour, image)


def mirror_holes(fg: torch.Tensor, p0: torch.Tensor, on: torch.Tensor, dilate: int = 1,
                 max_area: float = 0.4) -> torch.Tensor:
    """Where :func:`mirror_decoys` puts its holes: (B, 1, H, W) bool, empty for the samples it leaves."""
    alpha = geometry.warp_foreground(fg[:, 3:4], 2 * p0)
    hole = alpha > 1e-3
    if dilate > 0:
        hole = F.max_pool2d(hole.to(fg.dtype), 2 * dilate + 1, stride=1, padding=dilate) > 0
    on = on & (hole.float().mean((1, 2, 3)) <= max_area)
    return hole & on.view(-1, 1, 1, 1)


def mirror_decoys(bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor, on: torch.Tensor,
                  dilate: int = 1, max_area: float = 0.4) -> torch.Tensor:
    """Backgrounds ``bg`` (B, 3, H, W) with a decoy hole filled at ``M(2 p0)`` for the samples where
    ``on`` (B, bool).  ``fg`` (B, 4, H, W) is the object at its true place, ``p0`` (B, 8) the start.
    The hole is everything the moved object touches, grown by ``dilate`` pixels (the real holes are
    the mask grown by 3 % of the object's diagonal, about a pixel at 120x160).  A decoy that would
    cover more than ``max_area`` of the frame (a wild start blown up twice) is left out: it would
    erase the scene the model must read."""
    if not bool(on.any()):
        return bg
    return push_pull_fill(bg, mirror_holes(fg, p0, on, dilate, max_area))


def carry_up(detail: torch.Tensor, filled: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The same decoys in ``detail``, the backgrounds at a higher resolution: the holes (B, 1, h, w)
    of the frame's ``filled`` backgrounds, grown to cover every pixel they touch there, take the
    frame's fill upsampled.  A push-pull fill is smooth, so this is what filling at the higher
    resolution gives, for a fraction of its cost."""
    rows = torch.nonzero(hole.flatten(1).any(1)).flatten()
    if len(rows) == 0:
        return detail
    up = lambda t: F.interpolate(t, size=detail.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
    out = detail.clone()
    out[rows] = torch.where(up(hole[rows].to(detail.dtype)) > 0, up(filled[rows]), detail[rows])
    return out
