"""Candidate boxes for automatic placement, in normalised photo coordinates.

Convention: a box is ``x1, y1, x2, y2`` with ``(0, 0)`` the photo's top-left corner and ``(1, 1)``
its bottom-right (outer pixel edges), so a box means the same on a photo of any size and in the
model's stretched 120x160 frame.  An object's *aspect* is its box's width over height in these
units, ``(w_px / W) / (h_px / H)``; its *scale* the square root of the share of the photo it covers.
"""

from __future__ import annotations

import numpy as np

SCALES = (0.1, 0.14, 0.2, 0.28, 0.4, 0.56, 0.8)  # sqrt of the area share: 1 % to 64 % of the photo


def box_size(aspect: float, scale: float) -> tuple[float, float]:
    """Normalised width and height of a box of ``aspect`` covering ``scale**2`` of the photo."""
    r = float(np.sqrt(aspect))
    return scale * r, scale / r


def candidate_boxes(aspect: float, count: int = 1000, scales=SCALES, width: float | None = None):
    """About ``count`` boxes of ``aspect`` inside the photo: for every scale of ``scales`` (or the one
    normalised ``width``, a user's ``--scale``) an equal share, their centres on a regular grid over
    the places where a box of that size fits.

    Returns ``boxes`` (N, 4), ``cells`` (N, 2) int and ``grid`` (rows, cols): each box's centre's
    column and row on one common grid, for maps of the best score per position."""
    sizes = [(width, width / aspect)] if width is not None else [box_size(aspect, s) for s in scales]
    sizes = [(w, h) for w, h in sizes if w <= 1 + 1e-9 and h <= 1 + 1e-9] or [_fit(aspect)]
    per_scale = max(count / len(sizes), 1)
    cols = max(2, int(round(np.sqrt(per_scale * 4 / 3))))
    rows = max(2, int(round(per_scale / cols)))
    boxes = []
    for w, h in sizes:
        rx, ry = max(1 - w, 0), max(1 - h, 0)
        nx = max(1, int(round(np.sqrt(per_scale * (rx + 1e-3) / (ry + 1e-3))))) if rx > 0 else 1
        ny = max(1, int(round(per_scale / nx))) if ry > 0 else 1
        nx = nx if rx > 0 else 1
        for cy in (np.linspace(h / 2, 1 - h / 2, ny) if ny > 1 else [0.5 if ry == 0 else 0.5]):
            for cx in (np.linspace(w / 2, 1 - w / 2, nx) if nx > 1 else [0.5]):
                boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    boxes = np.clip(np.array(boxes, float), 0, 1)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    cells = np.stack([np.minimum((centre[:, 0] * cols).astype(int), cols - 1),
                      np.minimum((centre[:, 1] * rows).astype(int), rows - 1)], 1)
    return boxes, cells, (rows, cols)


def _fit(aspect: float) -> tuple[float, float]:
    """The largest box of ``aspect`` that fits the photo."""
    return (1.0, 1.0 / aspect) if aspect >= 1 else (aspect, 1.0)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` (..., 4) and ``b`` (..., 4), broadcast."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def centre_error(a: np.ndarray, b: np.ndarray, size) -> np.ndarray:
    """Distance between the centres of ``a`` and ``b`` in % of the diagonal of a photo of ``size``
    (H, W)."""
    h, w = size
    dx = ((a[..., 0] + a[..., 2]) - (b[..., 0] + b[..., 2])) / 2 * w
    dy = ((a[..., 1] + a[..., 3]) - (b[..., 1] + b[..., 3])) / 2 * h
    return 100 * np.hypot(dx, dy) / np.hypot(h, w)


def to_pixels(box, size) -> tuple[float, float, float, float]:
    """A normalised box in the pixels of a photo of ``size`` (H, W)."""
    h, w = size
    return (float(box[0] * w), float(box[1] * h), float(box[2] * w), float(box[3] * h))


def from_pixels(box, size) -> np.ndarray:
    h, w = size
    return np.array([box[0] / w, box[1] / h, box[2] / w, box[3] / h], float)
