"""Random warps for training and evaluation, in the paper's terms.

Warp noise is drawn in sl(3) (the generators' parameters, canonical units of the canvas): every
parameter gets ``N(0, std_homography)`` and the translations ``p1, p5`` get ``N(0, std_translation)``
more.  The paper's defaults are 0.1 and 0.1.
"""

from __future__ import annotations

import numpy as np

from . import frames

TRANSLATION = (0, 4)  # indices of p1 (x) and p5 (y)
# The paper's perturbation: the std of every sl(3) parameter, and the translations' extra std.  A
# model trained without a record of its own (provenance.perturbation) is taken to have used it.
PAPER_STD = (0.1, 0.1)


def warp_noise(n: int, std_homography: float = PAPER_STD[0], std_translation: float = PAPER_STD[1],
               rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n, 8)`` float64 sl(3) perturbations."""
    rng = rng or np.random.default_rng()
    p = rng.normal(0.0, std_homography, (n, 8))
    p[:, TRANSLATION] += rng.normal(0.0, std_translation, (n, 2))
    return p


def box_noise(boxes: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, 8)`` sl(3) perturbations that show each object as a user's rough box would place it: its
    box ``(n, 4)`` (canonical ``x1, y1, x2, y2``) shifted by ``N(0, std)`` of its width and height
    and scaled by ``exp(N(0, std))`` about its centre (the evaluation's ``box`` protocol).

    The canvas is shown moved by ``expm(-A(p))`` (:mod:`stgan_cli.core.metrics`), so ``p`` is minus the
    logarithm of that similarity, normalised to determinant 1; its logarithm is closed-form because
    the matrix is upper triangular."""
    boxes = np.asarray(boxes, np.float64)
    n = len(boxes)
    shift_x, shift_y, log_s = (rng.normal(0.0, std, n) for _ in range(3))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    s = np.exp(log_s)
    # shown = T(c + t) diag(s, s, 1) T(-c) = [[s, 0, ux], [0, s, uy], [0, 0, 1]], over s^(2/3):
    ux, uy = cx + shift_x * w - s * cx, cy + shift_y * h - s * cy
    a, b = s ** (1 / 3), s ** (-2 / 3)
    ln_a, ln_b = log_s / 3, -2 * log_s / 3
    same = np.abs(a - b) < 1e-12
    factor = np.where(same, 1 / a, (ln_a - ln_b) / np.where(same, 1.0, a - b))
    off_x, off_y = ux / s ** (2 / 3) * factor, uy / s ** (2 / 3) * factor
    p = np.zeros((n, 8))
    p[:, 0], p[:, 4] = -off_x, -off_y  # p1, p5: -log's translations
    p[:, 2], p[:, 6] = -ln_a, -ln_b  # p3 = -A[0,0], p7 = -A[2,2]
    return p


def perturb_background(bg: np.ndarray, std: float = 0.1, rng: np.random.Generator | None = None) -> np.ndarray:
    """The background (``(H, W, C)``) warped by a random sl(3) warp of ``std``, borders reflected: the
    unpaired setting's augmentation, so D cannot memorise backgrounds."""
    import cv2

    rng = rng or np.random.default_rng()
    h, w = bg.shape[:2]
    src_from_dst = frames.expm(frames.sl3_matrix(rng.normal(0.0, std, 8)))
    dst_from_src_pix = frames.pixel_from_canon((h, w)) @ np.linalg.inv(src_from_dst) @ frames.canon_from_pixel((h, w))
    return cv2.warpPerspective(bg, dst_from_src_pix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
