"""Placement metrics against a known true pose (paired data), in pixels of the model's resolution.

A foreground canvas holds the object at its true pose; warp parameters ``p`` show it moved by
``expm(A(p))^-1 = expm(-A(p))`` (see :mod:`stgan_cli.core.geometry`).  So a point ``x`` of the object
appears at ``expm(-A(p)) x``, and ``p = 0`` is the truth.
"""

from __future__ import annotations

import torch

from . import geometry
from .frames import object_boxes
from .geometry import box_points, displayed, to_pixels


def placement_errors(p: torch.Tensor, boxes: torch.Tensor, size) -> dict:
    """Per sample, in pixels: the mean corner distance (``corner_error``), the same after removing
    the mean displacement (``shape_error``: perspective and scale alone), the mean displacement's
    horizontal and vertical parts (``x_error``, ``y_error``), and the corner error of the box's two
    top and two bottom corners (``top_error``, ``base_error``: where an object stands is better
    determined by a picture than how tall it is)."""
    pts = box_points(boxes)
    delta = to_pixels(displayed(pts, p) - pts, size)
    mean = delta.mean(1)
    dist = delta.norm(dim=-1)
    return {"corner_error": dist.mean(1), "shape_error": (delta - mean[:, None]).norm(dim=-1).mean(1),
            "x_error": mean[:, 0].abs(), "y_error": mean[:, 1].abs(),
            "top_error": dist[:, :2].mean(1), "base_error": dist[:, 2:].mean(1)}


def mask_iou(alpha_a: torch.Tensor, alpha_b: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    a, b = alpha_a > threshold, alpha_b > threshold
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


def lens_errors(p: torch.Tensor, eyes: torch.Tensor, size, eye_distance: torch.Tensor | None = None) -> torch.Tensor:
    """Per sample: the lens centres' mean distance from where the truth puts them, over the eye
    distance ``eye_distance`` (B,) (pixels; default that of ``eyes``).

    On an aligned face frame with glasses on the canonical canvas, the lenses sit at ``eyes`` (2, 2)
    (pixels) when ``p = 0``: the truth."""
    delta = lens_points(p, eyes, size) - eyes
    return delta.norm(dim=-1).mean(1) / (_eye_distance(eyes) if eye_distance is None else eye_distance)


def lens_points(p: torch.Tensor, lenses: torch.Tensor, size) -> torch.Tensor:
    """(B, 2, 2) pixels: where the lens centres ``lenses`` (2, 2) of the canvas go under the warps ``p``."""
    h, w = size
    scale = lenses.new_tensor([2 / w, 2 / h])
    pts = ((lenses + 0.5) * scale - 1).expand(p.shape[0], 2, 2)
    return (displayed(pts, p) + 1) / scale - 0.5


def against_eyes(lenses: torch.Tensor, eyes: torch.Tensor) -> dict:
    """The lens centres ``lenses`` (B, 2, 2) against the face's own eye centres ``eyes`` (B, 2, 2),
    in its eye distances: the lenses' mean distance from the eyes (plain eye-centre truth), the
    glasses' centre from the eyes' midpoint along the eye line (signed, and its size: sideways) and
    across it (down: positive), and the lens line's tilt from the eye line (degrees, unsigned)."""
    line = eyes[:, 1] - eyes[:, 0]
    iod = line.norm(dim=-1)
    u = line / iod[:, None]
    down = torch.stack([-u[:, 1], u[:, 0]], 1)
    off = lenses.mean(1) - eyes.mean(1)
    lens_line = lenses[:, 1] - lenses[:, 0]
    tilt = torch.atan2(lens_line[:, 1], lens_line[:, 0]) - torch.atan2(line[:, 1], line[:, 0])
    tilt = torch.rad2deg(torch.atan2(torch.sin(tilt), torch.cos(tilt))).abs()
    along = (off * u).sum(1) / iod
    return {"eye_lens_error": (lenses - eyes).norm(dim=-1).mean(1) / iod, "centre_along": along,
            "centre_sideways": along.abs(), "centre_across": (off * down).sum(1) / iod, "tilt_deg": tilt}


def _eye_distance(eyes: torch.Tensor) -> torch.Tensor:
    return (eyes[1] - eyes[0]).norm()


# What a pair of glasses' width may be over the wearer's eye distance: optical frames are 125-145 mm
# wide for pupil distances of 56-72 mm (the frame sizes printed on temples, and adult PD tables).
PLAUSIBLE_WIDTH = (1.7, 2.5)


def glasses_width(alpha: torch.Tensor, eye_distance: torch.Tensor) -> torch.Tensor:
    """Per sample: the width of the glasses' visible extent in ``alpha`` (B, H, W) over the eye
    distance ``eye_distance`` (pixels: one, or one per sample)."""
    boxes = object_boxes(alpha)
    return (boxes[:, 2] - boxes[:, 0]) * alpha.shape[-1] / 2 / eye_distance


def iteration_metrics(pred, fg: torch.Tensor, size, discriminator=None, eyes: torch.Tensor | None = None,
                      bg: torch.Tensor | None = None, eye_distance: torch.Tensor | None = None,
                      face_eyes: torch.Tensor | None = None) -> dict:
    """Per-iteration, per-sample metrics of a prediction on canvases ``fg`` at their true pose:
    each value is a ``(K + 1, B)`` tensor (initial first).  The critic's ``realism`` needs the
    backgrounds ``bg``; glasses' errors and widths are over ``eye_distance`` (B,) where the faces'
    own eye distances are known, else over that of ``eyes``; ``face_eyes`` (B, 2, 2), each face's own
    eye centres in the frame, adds :func:`against_eyes`."""
    boxes = object_boxes(fg[:, 3])
    out = {"corner_error": [], "shape_error": [], "x_error": [], "y_error": [], "top_error": [], "base_error": [],
           "iou": []}
    if discriminator is not None:
        out["realism"] = []
    if eyes is not None:
        out.update(lens_error=[], lens_worse=[], glasses_width=[], width_plausible=[])
    for p, warped in zip(pred.params, pred.warped):
        for k, v in placement_errors(p, boxes, size).items():
            out[k].append(v)
        out["iou"].append(mask_iou(warped[:, 3], fg[:, 3]))
        if eyes is not None:
            iod = _eye_distance(eyes) if eye_distance is None else eye_distance
            lens = lens_errors(p, eyes, size, iod)
            out["lens_error"].append(lens)
            out["lens_worse"].append((lens > out["lens_error"][0] + 1e-3).float())
            width = glasses_width(warped[:, 3], iod)
            out["glasses_width"].append(width)
            out["width_plausible"].append(((width >= PLAUSIBLE_WIDTH[0]) & (width <= PLAUSIBLE_WIDTH[1])).float())
            if face_eyes is not None:
                for k, v in against_eyes(lens_points(p, eyes, size), face_eyes).items():
                    out.setdefault(k, []).append(v)
        if discriminator is not None and bg is not None:
            out["realism"].append(discriminator(geometry.composite(bg, warped)).mean(dim=(1, 2, 3)))
    return {k: torch.stack(v) for k, v in out.items() if v}
