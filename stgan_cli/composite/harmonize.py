"""``composite --harmonize``: the object's colours matched to the photo.

The harmonizer reads the composite at 120x160 and predicts one colour transform
(:mod:`stgan_cli.core.colour_map`); the full-resolution cut-out goes through it before it is blended,
so the output keeps every pixel of detail.  Evaluation calls the same functions.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import compositing
from ..core import colour_map
from ..model import harmonizer_run

DEFAULT = "harmonize"
_CACHE: dict = {}
_LOCK = threading.Lock()


def harmonizer_folder(name: str | None) -> Path:
    """The harmonizer's model folder: ``name`` (a folder or a model name), or the bundled default."""
    from ..model import modelstore

    return modelstore.resolve(name or DEFAULT)


def open_harmonizer(ref: str | None = None, engine: str = "auto"):
    """(harmonizer, note), opened once per process and engine (batches and the page share it): run
    by onnxruntime from its folder's current ``model.onnx``, else by PyTorch (the note says why)."""
    folder = harmonizer_folder(ref)
    with _LOCK:
        if (folder, engine) not in _CACHE:
            _CACHE[folder, engine] = harmonizer_run.open_harmonizer(folder, engine)
        return _CACHE[folder, engine]


def predicted_change(x: np.ndarray, m: np.ndarray, theta: np.ndarray) -> float:
    """How much ``theta`` changes the object of the harmonizer's input (``x`` (1, 3, h, w), ``m``
    (1, 1, h, w)): fMSE on the 0-255 scale, as training measures it."""
    rgb = x[0].transpose(1, 2, 0)
    d = colour_map.apply(rgb, theta) - rgb
    w = m[0, 0][..., None]
    return float((d * d * w).sum() / max(3 * float(w.sum()), 1e-6) * 255 ** 2)


def transform(harmonizer, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, bool]:
    """(the transform for the harmonizer's input, whether it is applied): the identity when the
    predicted change is under the harmonizer's ``gate`` (its config: an object it sees no clear
    mismatch in is left as it is)."""
    theta = np.asarray(harmonizer.predict(x, m), np.float32)[0]
    gate = float(getattr(harmonizer, "gate", 0.0) or 0.0)
    if gate and predicted_change(x, m, theta) < gate:
        return np.zeros_like(theta), False
    return theta, True


def predict(harmonizer, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The transform for the composite ``rgb`` (H, W, 3, float in [0, 1]) whose object covers
    ``alpha`` (H, W, float in [0, 1])."""
    return transform(harmonizer, *harmonizer_run.inputs(rgb, alpha))[0]


def harmonize_pixels(rgb: np.ndarray, mask: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``rgb`` with the pixels under the bool ``mask`` through ``theta``; the rest untouched."""
    out = rgb.copy()
    out[mask] = colour_map.apply(rgb[mask], theta)
    return out


def harmonize_cutout(harmonizer, bg: np.ndarray, cutout: compositing.Cutout, bg_from_fg: np.ndarray):
    """(the cut-out with its colours matched to ``bg`` where ``bg_from_fg`` puts it, the transform);
    (the cut-out itself, None) when the harmonizer leaves it as it is."""
    bg_low, fg_low = compositing.lowres_inputs(compositing.as_rgb(bg), cutout, bg_from_fg, harmonizer_run.FRAME)
    a = fg_low[..., 3]
    seen = fg_low[..., :3] + bg_low * (1 - a[..., None])
    theta, applied = transform(harmonizer, seen.transpose(2, 0, 1)[None], a[None, None])
    if not applied:
        return cutout, None
    return replace(cutout, rgba=colour_map.apply_premultiplied(cutout.rgba, theta)), theta


def summary(before: compositing.Cutout, after: compositing.Cutout) -> dict:
    """What the transform did to the object, for the sidecar and ``--json``: whether it changed it,
    its mean colour before and after (0-255, RGB, over opaque pixels)."""
    if after is before:
        return {"changed": False}
    a = before.rgba[..., 3]
    keep = a > 0.5
    if not keep.any():
        keep = a > 0
    mean = lambda c: [round(float(v) * 255, 1) for v in (c.rgba[..., :3][keep] / a[keep][:, None]).mean(0)]
    return {"changed": True, "mean_before": mean(before), "mean_after": mean(after)}


def composite_all(harmonizer, bg: np.ndarray, cutout: compositing.Cutout, finals: list[np.ndarray]):
    """:func:`stgan_cli.composite.outputs.composite_all` with each object's colours matched to the photo where it
    lands: (composite, union of the masks, per object :func:`summary`)."""
    out, alpha, info = bg, None, []
    for m in finals:
        recoloured, _ = harmonize_cutout(harmonizer, bg, cutout, m)
        out, a = compositing.composite(out, recoloured, m)
        alpha = a if alpha is None else np.maximum(alpha, a)
        info.append(summary(cutout, recoloured))
    return out, alpha, info
