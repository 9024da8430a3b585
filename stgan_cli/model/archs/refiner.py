"""The refiner: one small update network, its weights shared by every iteration, that says where the
object's four box corners should go.

Why this shape (see the generator issue and ``docs/ablation.md``):

- **Shared weights, unrolled.**  Iterative homography networks (IC-STN, IHN, MCNet) apply one update
  block again and again with a loss after every application; each iteration then learns to correct
  what the last one left, and there is one network to train instead of N stages.
- **Corner offsets, not sl(3) numbers.**  The block predicts how far each corner of the object's
  box should move, in pixels of the frame; the perspective entries of sl(3) are a thousand times more
  sensitive than its translations, so regressing them directly is badly conditioned.  The offsets are
  turned into an sl(3) update exactly to first order (:func:`corner_update`), so everything
  downstream (sidecars, export, the full-resolution transfer) still sees the paper's parameters.
- **Position kept.**  Coordinate channels at every scale (CoordConv) and soft-argmax keypoints read
  positions off 30x40 and 15x20 maps instead of collapsing them into a 4x5 grid before a linear
  layer; GroupNorm keeps training steady at small batches.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core import frames, geometry

IN_CHANNELS = 7  # background RGB + warped foreground RGBA
KEYPOINTS = 16  # per scale
# Features read in the object's own frame: a ROI x ROI grid over its box grown by CONTEXT (so that
# the floor and shadow around it are in view), from the 1/4-resolution map.
ROI, CONTEXT, ROI_CHANNELS = 8, 2.0, 16
MAX_MOVE = 0.5  # canonical units per corner and iteration
MIN_HALF_SIZE = 0.02  # canonical units: a box this small (1-2 px) is treated as this large
# Corrections of the first-order update (a 3x3 exponential each, nothing next to the convolutions):
# the box Jacobian is exact at the identity only, so each step halves the error; after six the
# corners land within ~0.3 % of the move the block asked for (27 % off with none, for 5 px moves
# from a start 0.1 away in every sl(3) parameter).
NEWTON_STEPS = 6


def box_jacobian_inverse() -> torch.Tensor:
    """``(8, 8)``: sl(3) parameters of the box frame from the displacements of its corners
    ``(+-1, +-1)`` (x, y per corner), the inverse of their Jacobian at the identity."""
    corners = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda q: geometry.displayed(corners, q[None]).reshape(8), torch.zeros(8, dtype=torch.float64))
    return torch.linalg.inv(jac)


def corner_update(offsets: torch.Tensor, center: torch.Tensor, half: torch.Tensor, jinv: torch.Tensor) -> torch.Tensor:
    """The sl(3) update ``dp`` (B, 8) that moves the corners of the box (centre ``center`` (B, 2),
    half-sizes ``half`` (B, 2), canonical) by ``offsets`` (B, 4, 2; corners clockwise from the top
    left), to first order; ``jinv`` is :func:`box_jacobian_inverse`.

    In the box's own frame (corners at +-1) the map from corner displacements to sl(3) is one fixed
    matrix; conjugating by the box's frame ``M`` carries the update to the canvas: ``M A M^-1``.
    """
    q = (offsets / half[:, None]).reshape(-1, 8) @ jinv.to(offsets).T
    a = geometry.sl3_matrix(q)
    one, zero = torch.ones_like(center[:, 0]), torch.zeros_like(center[:, 0])
    m = torch.stack([torch.stack([half[:, 0], zero, center[:, 0]], -1),
                     torch.stack([zero, half[:, 1], center[:, 1]], -1),
                     torch.stack([zero, zero, one], -1)], -2)
    m_inv = torch.stack([torch.stack([1 / half[:, 0], zero, -center[:, 0] / half[:, 0]], -1),
                         torch.stack([zero, 1 / half[:, 1], -center[:, 1] / half[:, 1]], -1),
                         torch.stack([zero, zero, one], -1)], -2)
    return geometry.sl3_params(m @ a @ m_inv)


def canvas_corners(fg: torch.Tensor) -> torch.Tensor:
    """The corners (B, 4, 2) of the object's box in each canvas ``fg``, canonical."""
    # An empty canvas: the frame's corners stand in for the object's.
    return geometry.box_points(frames.object_boxes(fg[:, 3])).clamp(-1.0, 1.0)


def _box(corners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and half-sizes (B, 2) of the box around ``corners`` (B, 4, 2)."""
    lo, hi = corners.amin(1), corners.amax(1)
    return (lo + hi) / 2, ((hi - lo) / 2).clamp(min=MIN_HALF_SIZE)


def _coords(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    grid = geometry.canonical_grid((h, w), x.dtype, x.device).permute(2, 0, 1)
    return torch.cat([x, grid.expand(x.shape[0], -1, -1, -1)], 1)


class _ConvGN(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.Conv2d(cin + 2, cout, 3, stride, 1, bias=False), nn.GroupNorm(8, cout),
                         nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_coords(x))


def _soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Expected canonical ``(x, y)`` of each map's softmax: (B, K, H, W) -> (B, 2K)."""
    b, k, h, w = logits.shape
    prob = logits.flatten(2).softmax(-1)
    grid = geometry.canonical_grid((h, w), prob.dtype, prob.device).reshape(-1, 2)
    return (prob @ grid).flatten(1)


def window(images: torch.Tensor, center: torch.Tensor, half: torch.Tensor, size: int,
           src_from_dst: torch.Tensor | None = None) -> torch.Tensor:
    """``images`` (B, C, H, W) resampled on a ``size`` x ``size`` grid over the boxes (canonical
    centres and half-sizes (B, 2)); pixels outside the frame read 0.  With ``src_from_dst``
    (B, 3, 3), the images are first moved by that warp (:func:`geometry.warp_image`'s convention):
    the window of a warped canvas, read straight from the canvas at whatever resolution it has."""
    steps = (torch.arange(size, device=center.device, dtype=center.dtype) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(steps, steps, indexing="ij")
    unit = torch.stack([gx, gy], -1)  # (size, size, 2)
    grid = center[:, None, None] + unit[None] * half[:, None, None]
    if src_from_dst is not None:
        hom = torch.cat([grid, torch.ones_like(grid[..., :1])], -1).flatten(1, 2) @ src_from_dst.transpose(1, 2)
        z = hom[..., 2:3]
        z = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)  # as warp_image: no NaN at infinity
        grid = (hom[..., :2] / z).reshape(grid.shape)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


def detail_window(bg: torch.Tensor, warped: torch.Tensor, center: torch.Tensor, half: torch.Tensor, size: int,
                  detail=None) -> torch.Tensor:
    """The 7-channel window (background, warped object) over the boxes: from the frame's ``bg`` and
    ``warped`` canvas, or, with ``detail = (bg, fg canvas, src_from_dst)`` at a higher resolution of
    the same canonical frame, from those (the object sampled through its warp, never resampled
    twice).  A small object then gets as many pixels in the window as a large one."""
    if detail is None:
        return window(torch.cat([bg, warped], 1), center, half, size)
    bg_d, fg_d, src_from_dst = detail
    return torch.cat([window(bg_d, center, half, size),
                      window(fg_d, center, half, size, src_from_dst.to(center.dtype))], 1)


def _roi(features: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """``features`` (B, C, h, w) sampled on a ROI x ROI grid over the box of ``corners`` (B, 4, 2)
    grown CONTEXT times about its centre: (B, C, ROI, ROI)."""
    center, half = _box(corners)
    return window(features, center, half * CONTEXT, ROI)


class UpdateBlock(nn.Module):
    """``(bg, warped fg, current corners) -> corner offsets`` (B, 4, 2), canonical units."""

    def __init__(self, widths=(32, 64, 128), roi: bool = True):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(_ConvGN(IN_CHANNELS, w1, 2), _ConvGN(w1, w2, 2), _ConvGN(w2, w2))  # 1/4
        self.down = nn.Sequential(_ConvGN(w2, w3, 2), _ConvGN(w3, w3))  # 1/8
        self.keys4 = nn.Conv2d(w2, KEYPOINTS, 1)
        self.keys8 = nn.Conv2d(w3, KEYPOINTS, 1)
        self.roi = nn.Sequential(nn.Conv2d(w2, ROI_CHANNELS, 1), nn.ReLU(inplace=True)) if roi else None
        roi_features = ROI_CHANNELS * ROI * ROI if roi else 0
        self.mlp = nn.Sequential(nn.Linear(4 * KEYPOINTS + w3 + 8 + roi_features, 256), nn.ReLU(inplace=True),
                                 nn.Linear(256, 256), nn.ReLU(inplace=True))
        self.out = nn.Linear(256, 8)
        # An untrained block moves nothing: the identity warp, as the paper's generators start.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, bg: torch.Tensor, warped: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        f4 = self.stem(torch.cat([bg, warped], 1))
        f8 = self.down(f4)
        parts = [_soft_argmax(self.keys4(f4)), _soft_argmax(self.keys8(f8)), f8.mean((2, 3)), corners.flatten(1)]
        if self.roi is not None:
            parts.append(_roi(self.roi(f4), corners).flatten(1))
        feats = torch.cat([t.to(corners.dtype) for t in parts], 1)
        # Outputs of order 1 mean offsets of a tenth of the frame: the scale of the perturbations.
        # No move beyond half the frame: a wild early prediction would fold the box over itself,
        # and the exponential of that is not finite (it ended a training run in NaN).
        return MAX_MOVE * torch.tanh(0.1 * self.out(self.mlp(feats)) / MAX_MOVE).reshape(-1, 4, 2)


class Refiner(nn.Module):
    """One :class:`UpdateBlock` applied ``warps`` times."""

    arch_name = "refiner"

    sequential_stages = False  # one block: no per-generator stages
    roi = True
    reads_detail = False  # a block with a window (crop, lite) reads it at model.detail when asked

    def __init__(self, warps: int, image_size: tuple[int, int]):
        super().__init__()
        self.warps = warps
        self.block = self.make_block()
        # Computed here, outside any export trace; not saved (it is the same for every model).
        self.register_buffer("jinv", box_jacobian_inverse().float(), persistent=False)

    def make_block(self) -> nn.Module:
        return UpdateBlock(roi=self.roi)

    @property
    def iterations(self) -> int:
        return self.warps

    def update(self, i: int, bg: torch.Tensor, fg: torch.Tensor, warped: torch.Tensor, p: torch.Tensor,
               expm=None, detail=None) -> torch.Tensor:
        """``detail``: ``(bg, fg canvas)`` at a higher resolution of the frame (``model.detail``),
        where a block with a window reads it (:func:`detail_window`)."""
        # The geometry stays in the parameters' precision when the block runs under bf16 autocast.
        exact = torch.autocast(p.device.type, enabled=False)
        with torch.no_grad(), exact:  # the box only sets the frame of the update: no gradient through it
            pts = canvas_corners(fg).to(p.dtype)
            corners = geometry.displayed(pts, p.detach(), expm)
            center, half = _box(corners)
        if detail is not None and self.reads_detail:
            with exact:
                src_from_dst = (expm or torch.linalg.matrix_exp)(geometry.sl3_matrix(p))
            offsets = self.block(bg, warped, corners, (detail[0], detail[1], src_from_dst))
        else:
            offsets = self.block(bg, warped, corners)
        with exact:
            target = corners + offsets.to(p.dtype)
            jinv = self.jinv.to(p.dtype)
            dp = corner_update(target - corners, center, half, jinv)
            for _ in range(NEWTON_STEPS):  # quasi-Newton, the box's Jacobian standing in for the exact one
                dp = dp + corner_update(target - geometry.displayed(pts, p + dp, expm), center, half, jinv)
        # No object in the canvas, nothing to move: with the frame standing in for its box, the
        # quasi-Newton steps can run away (p ~ 1e2 after one update, then inf).
        empty = ~(fg[:, 3] > 0.5).flatten(1).any(1)
        return torch.where(empty[:, None], torch.zeros_like(dp), dp)

    def trained_by(self, stage_index: int | None) -> list[nn.Module]:
        return [self.block]


class GlobalRefiner(Refiner):
    """The refiner without features in the object's frame (keypoints and pooled features only): the
    ablation's row that shows what that frame is worth."""

    arch_name = "refiner-global"

    roi = False
