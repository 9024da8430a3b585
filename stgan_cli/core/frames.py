"""Pixel and canonical frames as 3x3 float64 numpy homographies (conventions: :mod:`stgan_cli.core.geometry`),
and the sl(3) warp in numpy: its matrix, its exponential and the full-resolution transfer.

No torch here: the full-resolution compositing path and the perturbations import only this.
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


def object_boxes(alpha, threshold: float = 0.5):
    """Canonical ``x1, y1, x2, y2`` (outer pixel edges) of each mask in ``alpha`` (B, H, W), where it is
    over ``threshold``: the project's one box of an object.  A numpy array gives float64; a torch
    tensor gives its own dtype and device, in torch operations (the generators trace it into their
    ONNX graphs).  An empty mask gives an inverted box."""
    _, h, w = alpha.shape
    on = alpha > threshold
    cols, rows = on.any(1), on.any(2)
    is_torch = hasattr(alpha, "detach")  # torch is imported only by its callers
    if is_torch:
        import torch

        xs, ys = torch.arange(w, device=alpha.device), torch.arange(h, device=alpha.device)
        big = torch.tensor(10 ** 6, device=alpha.device)
        lo, hi = (lambda t: t.min(1).values), (lambda t: t.max(1).values)
        where, stack = torch.where, torch.stack
    else:
        xs, ys, big = np.arange(w), np.arange(h), 10 ** 6
        lo, hi = (lambda t: t.min(1)), (lambda t: t.max(1))
        where, stack = np.where, np.stack
    x1, x2 = lo(where(cols, xs, big)), hi(where(cols, xs, -big)) + 1
    y1, y2 = lo(where(rows, ys, big)), hi(where(rows, ys, -big)) + 1
    out = stack([2 * x1 / w - 1, 2 * y1 / h - 1, 2 * x2 / w - 1, 2 * y2 / h - 1], 1)
    return out.to(alpha.dtype) if is_torch else out.astype(np.float64)


def sl3_matrix(p: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`stgan_cli.core.geometry.sl3_matrix` (same parameter order): ``(..., 8)`` ->
    ``(..., 3, 3)`` traceless."""
    p1, p2, p3, p4, p5, p6, p7, p8 = np.moveaxis(np.asarray(p, np.float64), -1, 0)
    return np.stack([np.stack([p3, p2, p1], -1), np.stack([p6, -p3 - p7, p5], -1), np.stack([p4, p8, p7], -1)], -2)


def params_showing_similarity(bg_from_fg: np.ndarray) -> np.ndarray:
    """The warp parameters ``p`` (8,) whose displayed warp ``expm(-A(p))`` is the 2D similarity
    ``bg_from_fg`` (rotation, uniform scale, translation; canonical frame), up to the scale sl(3)
    cannot hold.  The similarity's logarithm is closed-form: in complex numbers its linear part is
    ``w = s e^(i theta)``, so ``log`` has ``z = ln w`` there and the translation ``t z / (e^z - 1)``."""
    m = np.asarray(bg_from_fg, np.float64) / bg_from_fg[2, 2]
    w = complex(m[0, 0], m[1, 0])
    if abs(complex(m[1, 1], -m[0, 1]) - w) > 1e-9 * max(abs(w), 1.0) or np.abs(m[2, :2]).max() > 1e-12:
        raise ValueError("not a similarity")
    z = complex(np.log(abs(w)), np.angle(w))
    u = complex(m[0, 2], m[1, 2]) * (z / np.expm1(z) if abs(z) > 1e-12 else 1.0)
    log = np.array([[z.real, -z.imag, u.real], [z.imag, z.real, u.imag], [0.0, 0.0, 0.0]])
    a = -(log - np.trace(log) / 3 * np.eye(3))  # traceless: the scale that sl(3) drops
    return np.array([a[0, 2], a[0, 1], a[0, 0], a[2, 0], a[1, 2], a[1, 0], a[2, 2], a[2, 1]])


def expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential of small matrices ``(..., 3, 3)`` in float64 (scaling and squaring of a
    Taylor series, norm brought under 1/4: agrees with SciPy's to ~1e-13)."""
    a = np.asarray(a, np.float64)
    norm = np.abs(a).sum(-1).max(-1).max() if a.size else 0.0
    k = max(0, int(np.ceil(np.log2(max(norm, 1e-12) / 0.25))))
    a = a / (2 ** k)
    out = np.broadcast_to(np.eye(3), a.shape).copy()
    term = out.copy()
    for i in range(1, 12):
        term = term @ a / i
        out = out + term
    for _ in range(k):
        out = out @ out
    return out


def bg_from_fg_pixels(p, bg_size: Size, bg_from_fg_init: np.ndarray) -> np.ndarray:
    """Full-resolution ``bg_from_fg`` (pixels) of a cut-out corrected by the warp ``p`` (8 numbers).

    ``bg_from_fg_init`` places the cut-out on a background of ``bg_size`` before correction (the
    canvas the generators saw, at any resolution).  The correction moves the canvas by the inverse
    of ``expm(A(p))`` in canonical coordinates, which are the same at every resolution.
    """
    if hasattr(p, "detach"):  # a torch tensor
        p = p.detach().cpu().double().numpy()
    # expm(-A) is the inverse of expm(A) exactly: nothing to invert, however large the warp.
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged warp is refused below
        bg_from_canvas = expm(-sl3_matrix(np.asarray(p, np.float64).reshape(8)))
        m = pixel_from_canon(bg_size) @ bg_from_canvas @ canon_from_pixel(bg_size) @ bg_from_fg_init
    if not (np.all(np.isfinite(m)) and abs(m[2, 2]) > 1e-12):
        from ..errors import StganError

        raise StganError("the model's correction diverged (a warp too large to apply)")
    return m / m[2, 2]
