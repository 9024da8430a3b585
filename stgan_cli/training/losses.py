"""The losses of ST-GAN training (WGAN-GP critic, generator, trust region, supervised pre-training)."""

from __future__ import annotations

import torch

from ..core import geometry


def critic(d, images: torch.Tensor) -> torch.Tensor:
    """One realism score per image: the mean of the PatchGAN map."""
    return d(images).mean(dim=(1, 2, 3))


def gradient_penalty(d, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: ``(|grad D(x)| - 1)^2`` at random points between real and fake images."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(d, mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(d, real: torch.Tensor, fake: torch.Tensor, gp_weight: float):
    """D's loss and its parts: ``D(fake) - D(real) + gp_weight * GP`` (D scores real images higher)."""
    # One forward for both: D has no batch statistics, so each image is scored as it would be alone.
    scores = critic(d, torch.cat([real, fake]))
    real_score, fake_score = scores[: real.shape[0]].mean(), scores[real.shape[0]:].mean()
    gp = gradient_penalty(d, real, fake)
    return fake_score - real_score + gp_weight * gp, {"wdist": (real_score - fake_score).item(), "gp": gp.item()}


def trust_region(dps: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i mean |dp_i|^2``: keeps each update small so a generator cannot move the object away."""
    return sum((dp ** 2).sum(1).mean() for dp in dps)


def supervised_corner_loss(p: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Mean squared distance (canonical units) between where the object's box corners are shown after
    the warp ``p`` and where they truly are (``p = 0``)."""
    pts = geometry.box_points(boxes)
    return ((geometry.displayed(pts, p) - pts) ** 2).sum(-1).mean()


def corner_l1(p: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """Mean absolute offset, in pixels at ``size=(H, W)``, of the object's box corners shown after the
    warp ``p`` from where they truly are: the corner loss of iterative homography networks."""
    return corner_l1_each(p, boxes, size).mean()


def corner_l1_each(p: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """:func:`corner_l1` per sample: (B,)."""
    pts = geometry.box_points(boxes)
    return geometry.to_pixels(geometry.displayed(pts, p) - pts, size).abs().mean((1, 2))


# harm(relative=True): an object of this mean half-size (pixels; a 40 x 30 px box) weighs 1, and no
# box counts as smaller than MIN_HALF px (a speck would otherwise weigh without bound).
REF_HALF, MIN_HALF = 17.5, 2.0


def harm(p: torch.Tensor, start: torch.Tensor, boxes: torch.Tensor, size, relative: bool = False) -> torch.Tensor:
    """Mean over samples of how much further (pixels, as :func:`corner_l1`) the corners are from the
    truth after ``p`` than they were at ``start``: zero for every case left no worse.  ``relative``:
    each sample's excess in units of its box's mean half-size (times :data:`REF_HALF`)."""
    with torch.no_grad():
        before = corner_l1_each(start, boxes, size)
    excess = torch.relu(corner_l1_each(p, boxes, size) - before)
    if relative:
        wh = geometry.to_pixels(boxes[:, 2:] - boxes[:, :2], size).abs()
        excess = excess * REF_HALF / (wh.mean(1) / 2).clamp_min(MIN_HALF)
    return excess.mean()
