"""Colour changes of an object inside a photo, and the classical way to undo them.

Harmonization data is made the way iHarmony4 makes it: an object of a real photo is recoloured and
the original is the truth.  :func:`draw_change` draws one plausible change (exposure, white balance,
contrast, saturation, a tone curve, and a colour transfer from another photo's object), recorded as
a small JSON-able dict; :func:`apply_change` applies it to the pixels under a mask, at any resolution.

:func:`stats_transfer` is the classical baseline (Reinhard et al. 2001): the object's mean and
standard deviation per Lab channel set to those of a ring of background around it.

Images are float32 RGB in [0, 1] (sRGB-encoded); masks are bool ``(H, W)``.  Lab is OpenCV's
float convention (L in [0, 100]).
"""

from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
MIN_FMSE = 40.0  # a change must move the object by at least this (MSE on 0-255), or it is drawn again


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(np.ascontiguousarray(lab, np.float32), cv2.COLOR_Lab2RGB), 0, 1)


def lab_stats(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per Lab channel of the pixels under ``mask``."""
    lab = to_lab(rgb)[mask]
    if len(lab) == 0:
        return np.array([50.0, 0.0, 0.0], np.float32), np.ones(3, np.float32)
    return lab.mean(0).astype(np.float32), lab.std(0).astype(np.float32)


def ring(mask: np.ndarray, width: float = 0.1) -> np.ndarray:
    """The background around the object: the mask grown by ``width`` of its box's diagonal (at least
    3 px), minus the mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros_like(mask)
    r = max(3, int(round(width * np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))))
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    out = (grown > 0) & ~mask
    return out if out.any() else ~mask


# --- recolouring -----------------------------------------------------------------------------------

def draw_change(rng: np.random.Generator, other: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """One random, plausible colour change.  ``other``: another object's Lab (mean, std), taken as a
    colour transfer's target with probability 0.35.  Every key present is applied, in the order of
    :func:`apply_change`."""
    change: dict = {}
    if other is not None and rng.random() < 0.35:
        change["transfer"] = {"mean": [round(float(v), 3) for v in other[0]],
                              "std": [round(float(v), 3) for v in other[1]],
                              "strength": round(float(rng.uniform(0.5, 1.0)), 3)}
    if rng.random() < 0.7:
        change["exposure"] = round(float(rng.uniform(-0.8, 0.8)), 3)  # stops, in linear light
    if rng.random() < 0.6:  # temperature (red against blue) and tint (green), log2 gains in linear light
        change["white_balance"] = [round(float(rng.uniform(-0.25, 0.25)), 3), round(float(rng.uniform(-0.1, 0.1)), 3)]
    if rng.random() < 0.5:
        change["contrast"] = round(float(rng.uniform(0.75, 1.3)), 3)
    if rng.random() < 0.5:
        change["saturation"] = round(float(rng.uniform(0.6, 1.4)), 3)
    if rng.random() < 0.5:
        change["gamma"] = round(float(np.exp(rng.uniform(-0.35, 0.35))), 3)
    return change


def apply_change(rgb: np.ndarray, mask: np.ndarray, change: dict) -> np.ndarray:
    """``rgb`` with the pixels under ``mask`` changed by ``change`` (:func:`draw_change`); the rest is
    returned as it was, bit for bit."""
    px = rgb[mask].reshape(-1, 1, 3).astype(np.float32)
    if len(px) == 0 or not change:
        return rgb.copy()
    if "transfer" in change:
        t = change["transfer"]
        lab = to_lab(px)
        mean, std = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0) + 1e-3
        moved = (lab - mean) / std * np.asarray(t["std"], np.float32) + np.asarray(t["mean"], np.float32)
        px = from_lab(lab + t["strength"] * (moved - lab))
    if "exposure" in change or "white_balance" in change:
        temp, tint = change.get("white_balance", (0.0, 0.0))
        gains = 2.0 ** (change.get("exposure", 0.0) + np.array([temp - tint / 2, tint, -temp - tint / 2], np.float32))
        px = linear_to_srgb(srgb_to_linear(px) * gains)
    if "contrast" in change:
        mid = float((px.reshape(-1, 3) @ LUMA).mean())
        px = np.clip(mid + (px - mid) * change["contrast"], 0, 1)
    if "saturation" in change:
        grey = (px @ LUMA)[..., None]
        px = np.clip(grey + (px - grey) * change["saturation"], 0, 1)
    if "gamma" in change:
        px = np.clip(px, 0, 1) ** change["gamma"]
    out = rgb.copy()
    out[mask] = px.reshape(-1, 3)
    return out


def draw_visible_change(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                        other: tuple[np.ndarray, np.ndarray] | None = None, tries: int = 20) -> tuple[dict, np.ndarray]:
    """A change that moves the object by at least :data:`MIN_FMSE`, and the changed image (the last
    draw when none does in ``tries``)."""
    for _ in range(tries):
        change = draw_change(rng, other)
        out = apply_change(rgb, mask, change)
        if fmse(out, rgb, mask) >= MIN_FMSE:
            break
    return change, out


# --- the classical baseline and the measures --------------------------------------------------------

def stats_transfer(rgb: np.ndarray, mask: np.ndarray, width: float = 0.1) -> np.ndarray:
    """Reinhard's transfer: the object's Lab mean and standard deviation set to those of the
    background ring around it (:func:`ring`)."""
    if not mask.any():
        return rgb.copy()
    lab = to_lab(rgb)
    around = lab[ring(mask, width)]
    inside = lab[mask]
    moved = (inside - inside.mean(0)) / (inside.std(0) + 1e-3) * around.std(0) + around.mean(0)
    out = rgb.copy()
    out[mask] = from_lab(moved.reshape(-1, 1, 3)).reshape(-1, 3)
    return out


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over the whole image, on the 0-255 scale (iHarmony4's MSE)."""
    d = (a.astype(np.float64) - b.astype(np.float64)) * 255
    return float((d * d).mean())


def fmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over the object's pixels, on the 0-255 scale (fMSE)."""
    if not mask.any():
        return 0.0
    d = (a[mask].astype(np.float64) - b[mask].astype(np.float64)) * 255
    return float((d * d).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    m = mse(a, b)
    return float("inf") if m == 0 else float(10 * np.log10(255.0 ** 2 / m))
