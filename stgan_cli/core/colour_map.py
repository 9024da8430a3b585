"""The colour transform a harmonizer predicts, applied to pixels at any resolution.

One transform per object, as white-box harmonizers predict filter arguments (Ke et al., ECCV 2022):
a tone curve per channel, then a 3x3 colour matrix with an offset, then a second curve per channel.
Each curve is piecewise linear through :data:`KNOTS` values at evenly spaced inputs.  This family
holds the inverse of every change :mod:`stgan_cli.core.colour` draws up to the curves' resolution
(exposure and white balance are curves per channel, contrast and saturation are affine, gamma is a
curve), and it costs a few operations per pixel at full resolution.

``theta`` (:data:`N_PARAMS` floats) is the offset from the identity, so all zeros changes nothing:
``[curve1 (3 x KNOTS) | matrix (3 x 3, row-major) | offset (3) | curve2 (3 x KNOTS)]``.  The torch
twin used in training is :func:`stgan_cli.model.harmonizer.apply_torch`; tests hold them equal.
"""

from __future__ import annotations

import numpy as np

KNOTS = 9
N_PARAMS = 3 * KNOTS + 12 + 3 * KNOTS
GRID = np.linspace(0.0, 1.0, KNOTS, dtype=np.float32)


def split(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(curve1 (3, KNOTS), matrix (3, 3), offset (3,), curve2 (3, KNOTS)) as absolute values."""
    theta = np.asarray(theta, np.float32).reshape(N_PARAMS)
    k = 3 * KNOTS
    curve1 = GRID + theta[:k].reshape(3, KNOTS)
    matrix = np.eye(3, dtype=np.float32) + theta[k:k + 9].reshape(3, 3)
    offset = theta[k + 9:k + 12]
    curve2 = GRID + theta[k + 12:].reshape(3, KNOTS)
    return curve1, matrix, offset, curve2


def _curves(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for c in range(3):
        out[..., c] = np.interp(x[..., c], GRID, values[c])
    return out


def apply(rgb: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``rgb`` (float, ``(..., 3)``, in [0, 1]) through the transform ``theta``; float32 in [0, 1]."""
    curve1, matrix, offset, curve2 = split(theta)
    x = _curves(np.clip(rgb, 0, 1).astype(np.float32), curve1)
    x = np.clip(x @ matrix.T + offset, 0, 1).astype(np.float32)
    return np.clip(_curves(x, curve2), 0, 1)


def apply_premultiplied(rgba: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """A premultiplied RGBA cut-out (float) with its colours through ``theta``; alpha unchanged."""
    a = rgba[..., 3:4]
    colour = np.where(a > 0, rgba[..., :3] / np.maximum(a, 1e-6), 0)
    out = rgba.astype(np.float32, copy=True)
    out[..., :3] = apply(colour, theta) * a
    return out
