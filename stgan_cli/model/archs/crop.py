"""The crop refiner: the refiner's update block looking through a window that follows the object.

The refiner (:mod:`.refiner`) reads the whole frame at a quarter of its resolution, so a contact
shadow or an edge a few pixels wide is one or two cells of its features, and it must learn every
size and position of object separately.  This block instead resamples the background and the
warped object into a ``CROP`` x ``CROP`` window over the object's current box grown ``CONTEXT``
times, runs its convolutions there at the window's full resolution, and predicts the corner moves in
units of the box's own half-size.  The question each iteration asks becomes the same for a chair in
the corner and a sofa filling the frame ("where do these corners go, relative to this box?"), and
the window tightens around the object as the iterations bring it closer (coarse to fine).

A low-resolution view of the whole frame stays, so that the block knows the room around the window.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .refiner import IN_CHANNELS, KEYPOINTS, Refiner, _box, _ConvGN, _soft_argmax, detail_window

CROP, CONTEXT = 64, 1.75  # window: pixels a side, and the box grown this much about its centre
GLOBAL_POOL = 4  # the whole frame's view: the input averaged over 4x4 pixels
# Corner moves per iteration, in half-sizes of the current box: a perturbed box is rarely off by more
# than its own size, and three iterations may move it further.
MAX_MOVE = 1.0


class CropBlock(nn.Module):
    """``(bg, warped fg, current corners[, detail]) -> corner offsets`` (B, 4, 2), canonical units."""

    def __init__(self, widths=(32, 64, 96, 128)):
        super().__init__()
        w1, w2, w3, w4 = widths
        # In the window: full resolution (64), 1/2, 1/4 and 1/8 of it.
        self.local = nn.Sequential(_ConvGN(IN_CHANNELS, w1), _ConvGN(w1, w2, 2), _ConvGN(w2, w2),
                                   _ConvGN(w2, w3, 2), _ConvGN(w3, w3))
        self.local8 = nn.Sequential(_ConvGN(w3, w4, 2), _ConvGN(w4, w4))
        self.keys = nn.Conv2d(w3, KEYPOINTS, 1)
        self.squeeze = nn.Sequential(nn.Conv2d(w4, 16, 1), nn.ReLU(inplace=True))
        # The whole frame, coarsely: where the window sits in the room.
        self.frame = nn.Sequential(_ConvGN(IN_CHANNELS, w1), _ConvGN(w1, w2, 2), _ConvGN(w2, w2))
        self.frame_keys = nn.Conv2d(w2, KEYPOINTS, 1)
        cells = (CROP // 8) ** 2 * 16
        self.mlp = nn.Sequential(nn.Linear(cells + 4 * KEYPOINTS + w2 + 8 + 2, 256), nn.ReLU(inplace=True),
                                 nn.Linear(256, 256), nn.ReLU(inplace=True))
        self.out = nn.Linear(256, 8)
        nn.init.zeros_(self.out.weight)  # an untrained block moves nothing
        nn.init.zeros_(self.out.bias)

    def forward(self, bg: torch.Tensor, warped: torch.Tensor, corners: torch.Tensor, detail=None) -> torch.Tensor:
        images = torch.cat([bg, warped], 1)
        center, half = _box(corners)
        local = self.local(detail_window(bg, warped, center, half * CONTEXT, CROP, detail))
        local8 = self.local8(local)
        frame = self.frame(F.avg_pool2d(images, GLOBAL_POOL))
        parts = [self.squeeze(local8).flatten(1), _soft_argmax(self.keys(local)),
                 _soft_argmax(self.frame_keys(frame)), frame.mean((2, 3)), corners.flatten(1), half]
        feats = torch.cat([t.to(corners.dtype) for t in parts], 1)
        # Outputs of order 1 mean moves of a quarter of the box's half-size.
        move = MAX_MOVE * torch.tanh(0.25 * self.out(self.mlp(feats)) / MAX_MOVE).reshape(-1, 4, 2)
        return move * half[:, None]


class CropRefiner(Refiner):
    """One :class:`CropBlock` applied ``warps`` times (the refiner's loop and corner update)."""

    arch_name = "refiner-crop"

    reads_detail = True  # its window may come from the photo at model.detail times the frame

    def make_block(self) -> nn.Module:
        return CropBlock()
