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
Conventions are those of :mod:`stgan_cli.geometry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:  # torch is imported where it is used: parsing limits stays cheap
    import torch

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
    perturbation: tuple[float, float] = (0.1, 0.1)
    quantile: float = QUANTILE

    def to_dict(self) -> dict:
        d = {k: (None if getattr(self, k) is None else round(float(getattr(self, k)), 4)) for k in MEASURES}
        return {**d, "perturbation": list(self.perturbation), "quantile": self.quantile}


def measure(before: torch.Tensor, after: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four measures of moving the corners ``before`` (..., 4, 2) to ``after`` (pixels)."""
    import torch

    a = before - before.mean(-2, keepdim=True)
    b = after - after.mean(-2, keepdim=True)
    size = _box_size(before).clamp(min=1e-9)
    za, zb = torch.complex(a[..., 0], a[..., 1]), torch.complex(b[..., 0], b[..., 1])
    z = (za.conj() * zb).sum(-1) / (za.abs() ** 2).sum(-1).clamp(min=1e-12)  # similarity: s * e^{i theta}
    residual = zb - z[..., None] * za
    return {"move": (after.mean(-2) - before.mean(-2)).norm(dim=-1) / size,
            "scale": z.abs(),
            "rotate": torch.rad2deg(torch.angle(z)).abs(),
            "shape": (residual.abs() ** 2).mean(-1).sqrt() / size}


def _box_size(corners: torch.Tensor) -> torch.Tensor:
    x, y = corners[..., 0], corners[..., 1]
    area = 0.5 * (x * y.roll(-1, -1) - y * x.roll(-1, -1)).sum(-1).abs()
    return area.sqrt()


def inside(m: dict[str, torch.Tensor], limits: dict[str, torch.Tensor], share: float = 1.0) -> torch.Tensor:
    """Per sample, whether the measures ``m`` respect ``limits`` (per-sample tensors), of which a
    single step may use ``share``."""
    scale = limits["scale"] ** share
    return ((m["move"] <= limits["move"] * share) & (m["scale"] <= scale) & (m["scale"] >= 1 / scale)
            & (m["rotate"] <= limits["rotate"] * share) & (m["shape"] <= limits["shape"] * share))


class TrustRegion:
    """The clamp applied by :meth:`stgan_cli.nets.STGAN.forward` after each generator."""

    def __init__(self, limits: Limits, size):
        self.limits, self.size = limits, tuple(size)
        self.clamped: torch.Tensor | None = None  # per sample, after a forward: was any update shortened
        self.resolved: dict[str, torch.Tensor] | None = None  # per sample, the limits in force

    def corners(self, p: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Pixels ``(..., 4, 2)`` where the canonical ``boxes`` (B, 4) are shown after ``p`` (..., B, 8)."""
        from . import evaluation

        pts = evaluation.box_points(boxes)
        lead = p.shape[:-2]
        shown = evaluation.displayed(pts.expand(*lead, *pts.shape).reshape(-1, 4, 2), p.reshape(-1, 8))
        h, w = self.size
        return ((shown + 1) * shown.new_tensor([w / 2, h / 2])).reshape(*lead, *pts.shape)

    def resolve(self, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per object, the limits: given ones as they are, the others from the training perturbation."""
        import numpy as np
        import torch

        from .data.perturb import warp_noise

        b = boxes.shape[0]
        out = {k: torch.full((b,), float(getattr(self.limits, k)), dtype=torch.float64)
               for k in MEASURES if getattr(self.limits, k) is not None}
        if len(out) < len(MEASURES):
            noise = torch.from_numpy(warp_noise(SAMPLES, *self.limits.perturbation, np.random.default_rng(0)))
            p = noise[:, None].expand(SAMPLES, b, 8)
            m = measure(self.corners(p, boxes), self.corners(torch.zeros_like(p), boxes))  # undo each one
            m["scale"] = torch.maximum(m["scale"], 1 / m["scale"])
            for k in MEASURES:
                out.setdefault(k, torch.quantile(m[k], self.limits.quantile, dim=0))
        return out

    def start(self, fg: torch.Tensor, p0: torch.Tensor) -> None:
        import torch

        from . import evaluation

        self.boxes = evaluation.object_boxes(fg[:, 3].double()).cpu()
        self.p0 = p0.double().cpu()
        self.resolved = self.resolve(self.boxes)
        self.clamped = torch.zeros(p0.shape[0], dtype=torch.bool)

    def __call__(self, p: torch.Tensor, dp: torch.Tensor) -> torch.Tensor:
        """``p + a * dp`` with, per sample, the largest ``a`` in [0, 1] inside both limits."""
        import torch

        p64, dp64 = p.double().cpu(), dp.double().cpu()
        start = self.corners(self.p0, self.boxes)
        before = self.corners(p64, self.boxes)

        def ok(a: torch.Tensor) -> torch.Tensor:
            after = self.corners(p64 + a[:, None] * dp64, self.boxes)
            return inside(measure(before, after), self.resolved, STEP_SHARE) & \
                inside(measure(start, after), self.resolved)

        one = torch.ones(p.shape[0], dtype=torch.float64)
        good = ok(one)
        if bool(good.all()):
            return p + dp
        lo, hi = torch.zeros_like(one), one.clone()
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            fine = ok(mid)
            lo, hi = torch.where(fine, mid, lo), torch.where(fine, hi, mid)
        a = torch.where(good, one, lo)
        self.clamped |= ~good
        return (p64 + a[:, None] * dp64).to(device=p.device, dtype=p.dtype)


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
