"""A trust region for the generators' corrections at inference: what a correction may do to the object.

A correction is judged by what it does to the object's box (its four corners, in pixels of the model
frame), relative to the object's own size ``L = sqrt(box area)``, after fitting the similarity
(shift, uniform scale, rotation) that best explains it:

- ``move``: the shift of the box's centre, in units of ``L``;
- ``scale``: the similarity's scale factor, allowed within ``[1 / scale, scale]``;
- ``rotate``: the similarity's rotation, in degrees;
- ``shape``: what the similarity leaves (shear, squash, perspective): RMS corner residual over ``L``.

Each generator's update and the total correction from the start must stay inside the limits (a
step may use ``STEP_SHARE`` of the total's).  An update that would leave them is shortened along its
own direction in sl(3) (``p + a * dp`` with the largest ``a`` in [0, 1] that stays inside, by
bisection), so the object is moved less but never in a new direction.  Nothing is clamped during
training.

Default limits come from the training perturbation, per object: the 99th percentile of what undoing
that perturbation asks of *this* object (its box, where it is in the frame), so a correction the
model was never trained to make is not made.  The perturbation is drawn in the frame's canonical
units, so a small object may move further relative to its size than a large one.  A model's
``config.yaml`` may fix any limit (``trust_region: {move: 0.3}``), and so may ``--trust-region``.
Conventions are those of :mod:`stgan_cli.core.geometry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import frames
from .perturb import PAPER_STD
from ..errors import UsageError

MEASURES = ("move", "scale", "rotate", "shape")
STEP_SHARE = 1.0  # one generator may take this share of the total budget (per measure)
QUANTILE = 0.99
SAMPLES = 512  # training perturbations drawn to set an object's limits
BISECTION_STEPS = 12


@dataclass(frozen=True)
class Limits:
    """Each measure's limit; ``None``: per object, what undoing the training perturbation
    (``perturbation``: sl(3) std of every parameter, extra std of the translations) asks of that
    object, at ``quantile``."""

    move: float | None = None  # centre shift, in object sizes
    scale: float | None = None  # scale within [1/scale, scale]
    rotate: float | None = None  # degrees
    shape: float | None = None  # RMS corner residual after the best similarity, in object sizes
    perturbation: tuple[float, float] = PAPER_STD
    quantile: float = QUANTILE

    def to_dict(self) -> dict:
        d = {k: (None if getattr(self, k) is None else round(float(getattr(self, k)), 4)) for k in MEASURES}
        return {**d, "perturbation": list(self.perturbation), "quantile": self.quantile}


def measure(before, after) -> dict[str, np.ndarray]:
    """The four measures of moving the corners ``before`` (..., 4, 2) to ``after`` (pixels)."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    a = before - before.mean(-2, keepdims=True)
    b = after - after.mean(-2, keepdims=True)
    size = np.maximum(_box_size(before), 1e-9)
    za, zb = a[..., 0] + 1j * a[..., 1], b[..., 0] + 1j * b[..., 1]
    z = (za.conj() * zb).sum(-1) / np.maximum((np.abs(za) ** 2).sum(-1), 1e-12)  # similarity: s * e^{i theta}
    residual = zb - z[..., None] * za
    return {"move": np.linalg.norm(after.mean(-2) - before.mean(-2), axis=-1) / size,
            "scale": np.abs(z),
            "rotate": np.abs(np.degrees(np.angle(z))),
            "shape": np.sqrt((np.abs(residual) ** 2).mean(-1)) / size}


def _box_size(corners: np.ndarray) -> np.ndarray:
    x, y = corners[..., 0], corners[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, -1) - y * np.roll(x, -1, -1)).sum(-1))
    return np.sqrt(area)


def inside(m: dict[str, np.ndarray], limits: dict[str, np.ndarray], share: float = 1.0) -> np.ndarray:
    """Per sample, whether the measures ``m`` respect ``limits`` (per-sample arrays), of which a
    single step may use ``share``."""
    scale = limits["scale"] ** share
    return ((m["move"] <= limits["move"] * share) & (m["scale"] <= scale) & (m["scale"] >= 1 / scale)
            & (m["rotate"] <= limits["rotate"] * share) & (m["shape"] <= limits["shape"] * share))


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, np.float64)


class TrustRegion:
    """The clamp applied after each generator, by :func:`stgan_cli.model.nets.iterate` (torch tensors)
    and by the ONNX engine (numpy arrays); the arithmetic is numpy float64 either way, so both
    engines clamp alike and this module imports no torch."""

    def __init__(self, limits: Limits, size):
        self.limits, self.size = limits, tuple(size)
        self.clamped: np.ndarray | None = None  # per sample, after a forward: was any update shortened
        self.resolved: dict[str, np.ndarray] | None = None  # per sample, the limits in force

    def corners(self, p, boxes) -> np.ndarray:
        """Pixels ``(..., 4, 2)`` where the canonical ``boxes`` (B, 4) are shown after ``p`` (..., B, 8)."""
        p, boxes = _numpy(p), _numpy(boxes)
        x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
        pts = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x2, y2], -1),
                        np.stack([x1, y2], -1)], -2)  # (B, 4, 2)
        shown_from_canvas = frames.expm(frames.sl3_matrix(-p))  # (..., B, 3, 3)
        hom = np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], -1) @ np.swapaxes(shown_from_canvas, -1, -2)
        with np.errstate(divide="ignore", invalid="ignore"):
            shown = hom[..., :2] / hom[..., 2:3]
        h, w = self.size
        return (shown + 1) * np.array([w / 2, h / 2])

    def resolve(self, boxes) -> dict[str, np.ndarray]:
        """Per object, the limits: given ones as they are, the others from the training perturbation."""
        from .perturb import warp_noise

        boxes = _numpy(boxes)
        b = boxes.shape[0]
        out = {k: np.full((b,), float(getattr(self.limits, k))) for k in MEASURES if getattr(self.limits, k) is not None}
        if len(out) < len(MEASURES):
            noise = warp_noise(SAMPLES, *self.limits.perturbation, np.random.default_rng(0))
            p = np.broadcast_to(noise[:, None], (SAMPLES, b, 8))
            m = measure(self.corners(p, boxes), self.corners(np.zeros_like(p), boxes))  # undo each one
            m["scale"] = np.maximum(m["scale"], 1 / m["scale"])
            for k in MEASURES:
                out.setdefault(k, np.quantile(m[k], self.limits.quantile, axis=0))
        return out

    def start(self, fg, p0) -> None:
        """``fg``: the foreground canvases (B, 4, H, W), ``p0``: the starting warps (B, 8)."""
        self.boxes = frames.object_boxes(_numpy(fg[:, 3]))
        self.p0 = _numpy(p0)
        self.resolved = self.resolve(self.boxes)
        self.clamped = np.zeros(self.p0.shape[0], dtype=bool)

    def __call__(self, p, dp):
        """``p + a * dp`` with, per sample, the largest ``a`` in [0, 1] inside both limits (the type of
        ``p``: a torch tensor or a numpy array)."""
        p64, dp64 = _numpy(p), _numpy(dp)
        start = self.corners(self.p0, self.boxes)
        before = self.corners(p64, self.boxes)

        def ok(a: np.ndarray) -> np.ndarray:
            after = self.corners(p64 + a[:, None] * dp64, self.boxes)
            with np.errstate(invalid="ignore"):
                return inside(measure(before, after), self.resolved, STEP_SHARE) & \
                    inside(measure(start, after), self.resolved)

        one = np.ones(p64.shape[0])
        good = ok(one)
        if bool(good.all()):
            return p + dp
        lo, hi = np.zeros_like(one), one.copy()
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            fine = ok(mid)
            lo, hi = np.where(fine, mid, lo), np.where(fine, hi, mid)
        a = np.where(good, one, lo)
        self.clamped |= ~good
        out = p64 + a[:, None] * dp64
        if hasattr(p, "detach"):
            import torch

            return torch.from_numpy(out).to(device=p.device, dtype=p.dtype)
        return out.astype(np.asarray(p).dtype)


def parse(spec: str, default: Limits) -> Limits | None:
    """``--trust-region``: ``default``, ``off``, or ``key=value,...`` over the default
    (``move=0.3,scale=1.2,rotate=5,shape=0.05``)."""
    text = spec.strip().lower()
    if text in ("default", "on", ""):
        return default
    if text in ("off", "none"):
        return None
    changes = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or key not in MEASURES or not math.isfinite(number) or number <= 0 or \
                (key == "scale" and number < 1):
            raise UsageError(f"--trust-region {spec}: expected default, off, or key=value pairs with keys "
                             f"{', '.join(MEASURES)} (positive numbers; scale >= 1)")
        changes[key] = number
    return replace(default, **changes)


def region(limits: Limits | None, size) -> TrustRegion | None:
    """A fresh trust region for one run of the generators at ``size`` (H, W), or None without limits:
    the one place one is built (each run records its own ``clamped`` and ``resolved``)."""
    return TrustRegion(limits, size) if limits is not None else None
