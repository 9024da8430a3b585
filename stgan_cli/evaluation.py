"""Placement metrics against a known true pose (paired data), in pixels of the model's resolution.

A foreground canvas holds the object at its true pose; warp parameters ``p`` show it moved by
``expm(A(p))^-1 = expm(-A(p))`` (see :mod:`stgan_cli.geometry`).  So a point ``x`` of the object
appears at ``expm(-A(p)) x``, and ``p = 0`` is the truth.
"""

from __future__ import annotations

import torch

from . import geometry


def object_boxes(alpha: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Canonical ``x1, y1, x2, y2`` (outer pixel edges) of each mask in ``alpha`` (B, H, W)."""
    b, h, w = alpha.shape
    on = alpha > threshold
    cols, rows = on.any(1), on.any(2)
    xs = torch.arange(w, device=alpha.device)
    ys = torch.arange(h, device=alpha.device)
    big = torch.tensor(10**6, device=alpha.device)
    x1 = torch.where(cols, xs, big).min(1).values
    x2 = torch.where(cols, xs, -big).max(1).values + 1
    y1 = torch.where(rows, ys, big).min(1).values
    y2 = torch.where(rows, ys, -big).max(1).values + 1
    return torch.stack([2 * x1 / w - 1, 2 * y1 / h - 1, 2 * x2 / w - 1, 2 * y2 / h - 1], 1).to(alpha.dtype)


def box_points(boxes: torch.Tensor) -> torch.Tensor:
    """The four corners ``(B, 4, 2)`` of canonical boxes ``(B, 4)``."""
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack([torch.stack([x1, y1], 1), torch.stack([x2, y1], 1),
                        torch.stack([x2, y2], 1), torch.stack([x1, y2], 1)], 1)


def displayed(points: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Where the canvas points ``(B, K, 2)`` appear after the warp ``p`` (B, 8)."""
    m = geometry.warp_matrix(-p)
    hom = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ m.transpose(1, 2)
    return hom[..., :2] / hom[..., 2:3]


def to_pixels(canon_offsets: torch.Tensor, size) -> torch.Tensor:
    h, w = size
    return canon_offsets * canon_offsets.new_tensor([w / 2, h / 2])


def corner_errors(p: torch.Tensor, boxes: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: mean corner distance in pixels (corner error) and the same after removing the mean
    displacement (shape error: perspective and scale alone)."""
    pts = box_points(boxes)
    delta = to_pixels(displayed(pts, p) - pts, size)
    corner = delta.norm(dim=-1).mean(1)
    shape = (delta - delta.mean(1, keepdim=True)).norm(dim=-1).mean(1)
    return corner, shape


def mask_iou(alpha_a: torch.Tensor, alpha_b: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    a, b = alpha_a > threshold, alpha_b > threshold
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float().clamp(min=1)
    return inter / union
