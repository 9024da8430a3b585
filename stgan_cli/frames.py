"""Pixel and canonical frames as 3x3 float64 numpy homographies (conventions: :mod:`stgan_cli.geometry`).

No torch here: the full-resolution compositing path imports only this.
"""

from __future__ import annotations

import numpy as np

Size = tuple[int, int]  # (height, width)



def canon_from_pixel(size: Size) -> np.ndarray:
    """3x3 float64 map from pixel coordinates of an image of ``size=(H, W)`` to canonical ones."""
    h, w = size
    return np.array([[2.0 / w, 0.0, 1.0 / w - 1.0],
                     [0.0, 2.0 / h, 1.0 / h - 1.0],
                     [0.0, 0.0, 1.0]])


def pixel_from_canon(size: Size) -> np.ndarray:
    """Inverse of :func:`canon_from_pixel`."""
    h, w = size
    return np.array([[w / 2.0, 0.0, (w - 1.0) / 2.0],
                     [0.0, h / 2.0, (h - 1.0) / 2.0],
                     [0.0, 0.0, 1.0]])


def rescale_homography(src_size: Size, dst_size: Size) -> np.ndarray:
    """``dst_from_src`` pixel map between two resolutions of the same picture (cv2.resize's)."""
    return pixel_from_canon(dst_size) @ canon_from_pixel(src_size)


def apply_homography(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points ``(x, y)`` through the 3x3 homography ``m``."""
    pts = np.asarray(points, dtype=np.float64)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ np.asarray(m, np.float64).T
    return hom[:, :2] / hom[:, 2:3]


def box_corners(size: Size) -> np.ndarray:
    """Outer corners ``(x, y)`` of an image of ``size=(H, W)`` in pixel coordinates (TL, TR, BR, BL)."""
    h, w = size
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


