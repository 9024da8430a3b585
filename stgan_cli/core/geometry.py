"""Geometry of ST-GAN: sl(3) warp parameters, coordinate frames, sampling and resolution transfer.

Conventions (every function in the project follows them)
--------------------------------------------------------
- Points are ``(x, y)``; image sizes are ``(height, width)``.
- Pixel frame: the centre of pixel ``(col, row)`` is the point ``(col, row)`` (OpenCV's convention).
- Canonical frame: ``[-1, 1]^2`` over an image, with ``-1`` and ``1`` at the *outer edges* of the
  corner pixels (``grid_sample(..., align_corners=False)``).  Because the edges, not the pixel
  centres, are pinned, a point has the same canonical coordinates at every resolution of the same
  picture, which is what lets a warp learnt at 120x160 be applied to a 4K image unchanged.
  ``x_canon = (2 * x_pix + 1) / W - 1``.
- Homographies are named ``<to>_from_<from>`` and map column vectors ``(x, y, 1)``.
- Warp parameters ``p`` (8 numbers) live in the Lie algebra sl(3), in the order of the paper's
  code: ``A(p) = [[p3, p2, p1], [p6, -p3-p7, p5], [p4, p8, p7]]`` (1-based), so ``p1``/``p5`` are
  the x/y translations.  The warp is ``expm(A(p))`` and updates compose by addition.
- ``expm(A(p))`` is ``fgcanvas_from_bg`` in canonical coordinates: it maps a background point to
  the point of the foreground canvas that is *sampled* there, as in the paper's ``transformImage``.
  The foreground therefore moves by the inverse of that matrix.
- Image tensors are ``(B, C, H, W)``; foregrounds are premultiplied RGBA in ``[0, 1]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The pixel/canonical frame maps are plain numpy, in their own module so that the full-resolution
# path imports no torch; they belong to this module's conventions and are re-exported here.
from .frames import Size, apply_homography, bg_from_fg_pixels, box_corners, canon_from_pixel, pixel_from_canon, rescale_homography


# --- sl(3) -------------------------------------------------------------------------------------

def sl3_matrix(p: torch.Tensor) -> torch.Tensor:
    """Traceless 3x3 matrix ``A(p)`` from warp parameters ``p`` of shape ``(..., 8)``."""
    p1, p2, p3, p4, p5, p6, p7, p8 = p.unbind(-1)
    rows = [
        torch.stack([p3, p2, p1], -1),
        torch.stack([p6, -p3 - p7, p5], -1),
        torch.stack([p4, p8, p7], -1),
    ]
    return torch.stack(rows, -2)


def sl3_params(a: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`sl3_matrix` for a traceless ``(..., 3, 3)`` matrix."""
    return torch.stack(
        [a[..., 0, 2], a[..., 0, 1], a[..., 0, 0], a[..., 2, 0],
         a[..., 1, 2], a[..., 1, 0], a[..., 2, 2], a[..., 2, 1]], -1)


def warp_matrix(p: torch.Tensor) -> torch.Tensor:
    """``fgcanvas_from_bg`` (canonical frames) for parameters ``p``: the exact ``expm(A(p))``."""
    return torch.linalg.matrix_exp(sl3_matrix(p))


def expm_series(a: torch.Tensor, squarings: int = 6, terms: int = 10) -> torch.Tensor:
    """``expm`` of ``(..., 3, 3)`` by a fixed scaling and squaring of a Taylor series: only matmuls,
    so it exports to any runtime (ONNX has no matrix exponential).  Matches ``matrix_exp`` to ~1e-7
    for norms up to a few units.  The project's exponentials: this one for exports,
    :func:`warp_matrix` (exact) everywhere else in torch, ``frames.expm`` in numpy."""
    a = a / (2 ** squarings)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(a)
    out, term = eye, eye
    for k in range(1, terms + 1):
        term = term @ a / k
        out = out + term
    for _ in range(squarings):
        out = out @ out
    return out


def compose(p: torch.Tensor, dp: torch.Tensor) -> torch.Tensor:
    """The paper's additive update ``p + dp`` (composition in the Lie algebra)."""
    return p + dp


# --- sampling ----------------------------------------------------------------------------------

def canonical_grid(size: Size, dtype=torch.float32, device=None) -> torch.Tensor:
    """Canonical ``(x, y)`` of every pixel centre of an image of ``size=(H, W)``: shape ``(H, W, 2)``."""
    h, w = size
    xs = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def warp_image(image: torch.Tensor, src_from_dst: torch.Tensor, size: Size | None = None) -> torch.Tensor:
    """Resample ``image`` (B, C, H, W) so that output pixel ``x`` takes the value at ``src_from_dst @ x``.

    ``src_from_dst`` is ``(B, 3, 3)`` in canonical frames; the output has ``size`` (default: the
    input's).  Bilinear, zeros outside: with premultiplied RGBA, outside is transparent.
    """
    size = size or tuple(image.shape[-2:])
    grid = canonical_grid(size, image.dtype, image.device).reshape(1, -1, 2)
    hom = torch.cat([grid, torch.ones_like(grid[..., :1])], -1).expand(image.shape[0], -1, -1)
    src = hom @ src_from_dst.transpose(1, 2)
    # The 1e-8 guard is the paper's: points at infinity sample nothing instead of NaN.
    z = src[..., 2:3]
    z = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    src_xy = (src[..., :2] / z).reshape(image.shape[0], size[0], size[1], 2)
    return F.grid_sample(image, src_xy, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_foreground(fg: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Foreground canvas ``fg`` (B, 4, H, W) moved by the warp with parameters ``p`` (B, 8)."""
    return warp_image(fg, warp_matrix(p))


def composite(bg: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Premultiplied ``fg`` (B, 4, H, W) over ``bg`` (B, 3, H, W)."""
    return fg[:, :3] + bg * (1 - fg[:, 3:4])


# --- where the object shows ---------------------------------------------------------------------

def box_points(boxes: torch.Tensor) -> torch.Tensor:
    """The four corners ``(B, 4, 2)`` of canonical boxes ``(B, 4)``."""
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack([torch.stack([x1, y1], 1), torch.stack([x2, y1], 1),
                        torch.stack([x2, y2], 1), torch.stack([x1, y2], 1)], 1)


def displayed(points: torch.Tensor, p: torch.Tensor, expm=None) -> torch.Tensor:
    """Where the canvas points ``(B, K, 2)`` appear after the warp ``p`` (B, 8); ``expm``: the matrix
    exponential (default: the exact one)."""
    m = (expm or torch.linalg.matrix_exp)(sl3_matrix(-p))
    hom = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ m.transpose(1, 2)
    return hom[..., :2] / hom[..., 2:3]


def to_pixels(canon_offsets: torch.Tensor, size) -> torch.Tensor:
    h, w = size
    return canon_offsets * canon_offsets.new_tensor([w / 2, h / 2])
