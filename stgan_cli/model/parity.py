"""How an export is checked: PyTorch's answer on realistic inputs (generated rooms), and the
distance between where two answers put the object's corners, refused above a tolerance."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core import frames, geometry
from ..errors import StganError


# An export must put the object's corners where PyTorch puts them, within this many pixels of the
# model's frame (120x160 for indoor) after every generator.  Float32 rounding alone moves them by
# ~3e-5 px (PyTorch float32 against float64, shipped models, generated rooms); the exports reorder
# float32 sums and exponentiate by a float32 series, and land within 1.4e-3 to 2.3e-3 px of PyTorch
# (onnx and pt2, both shipped models).  1e-2 px leaves room for other CPUs' kernels and stays
# invisible: scaled to a 4K photo it is a quarter of a pixel.
TOLERANCE_PX = 1e-2


def reference(net, bg, fg, p0, *detail, iterations: int | None = None, limits=None):
    """The PyTorch model's answer (exact matrix exponential) in the exports' output layout, with the
    trust region ``limits`` (:class:`~stgan_cli.core.trust_region.Limits`) or none; ``detail``: the
    background and canvas at the model's detail resolution, for a model that reads them."""
    from ..core.trust_region import region

    limit = region(limits, tuple(bg.shape[-2:]))
    with torch.no_grad():
        pred = net(bg, fg, p0, iterations=iterations, limit=limit, detail=tuple(detail) or None)
    params = torch.stack(pred.params, 1)
    return params, geometry.warp_matrix(params[:, -1])


def example_inputs(size, batch: int = 3, seed: int = 0, detail: int = 0):
    """Realistic inputs at ``size=(H, W)``: generated rooms, each with its piece of furniture as the
    premultiplied foreground canvas, and initial parameters perturbed like the paper's (std 0.05);
    with ``detail``, the background and canvas again at ``detail`` times the size (upsampled).

    Random noise is not realistic: it drives the generators far outside what they were trained on,
    where float32 differences grow into changes of the predicted warp that no real input shows."""
    from ..data import synth_indoor

    bgs, fgs = [], []
    for i in range(batch):
        _, (bg, obj, _) = synth_indoor.sample(seed, i, tuple(size))
        bgs.append(torch.from_numpy(bg).permute(2, 0, 1).float() / 255)
        fg = torch.from_numpy(obj).permute(2, 0, 1).float() / 255
        fgs.append(torch.cat([fg[:3] * fg[3:], fg[3:]]))
    p0 = torch.randn(batch, 8, generator=torch.Generator().manual_seed(seed)) * 0.05
    bg, fg = torch.stack(bgs), torch.stack(fgs)
    if not detail:
        return bg, fg, p0
    up = lambda t: torch.nn.functional.interpolate(t, scale_factor=detail, mode="bilinear", align_corners=False)  # noqa: E731
    return bg, fg, p0, up(bg), up(fg)


def object_corners(fg: torch.Tensor) -> torch.Tensor:
    """Corners ``(B, 4, 2)`` of the object's box in each canvas, canonical ``(x, y)``, float64; an
    empty canvas stands in the frame's."""
    boxes = frames.object_boxes(fg[:, 3].double(), 0.0)
    boxes[boxes[:, 0] > boxes[:, 2]] = boxes.new_tensor([-1.0, -1.0, 1.0, 1.0])
    return geometry.box_points(boxes)


def corner_pixels(warps: torch.Tensor, corners: torch.Tensor, size) -> torch.Tensor:
    """Where the canvas points ``corners`` (B, 4, 2) land in the background, in pixels of ``size``,
    for ``fgcanvas_from_bg`` warps of shape ``(B, ..., 3, 3)``: the inverse map, in float64."""
    lead = warps.shape[1:-2]
    pts = torch.cat([corners, torch.ones_like(corners[..., :1])], -1).transpose(-1, -2)  # (B, 3, 4)
    pts = pts.reshape(pts.shape[0], *([1] * len(lead)), 3, 4).expand(*warps.shape[:-2], 3, 4)
    bg = torch.linalg.solve(warps.double(), pts)
    pix = torch.from_numpy(geometry.pixel_from_canon(tuple(size))) @ bg
    return (pix[..., :2, :] / pix[..., 2:, :]).transpose(-1, -2)


def corner_distance(got, expected, inputs, size) -> float:
    """The largest distance (pixels of the model's frame) between where two answers (params,
    warp) put the object's corners, after every generator and through the returned warp matrix."""
    corners = object_corners(inputs[1])
    got_params, got_warp = (torch.as_tensor(g).double() for g in got)
    exp_params, exp_warp = (e.double() for e in expected)
    landed = lambda params, warp: torch.cat([
        corner_pixels(torch.linalg.matrix_exp(geometry.sl3_matrix(params)), corners, size),
        corner_pixels(warp[:, None], corners, size)], 1)
    return (landed(got_params, got_warp) - landed(exp_params, exp_warp)).norm(dim=-1).max().item()


def check(name: str, got, expected, inputs, size, path: Path) -> float:
    """:func:`corner_distance` of an export from PyTorch, refused above :data:`TOLERANCE_PX`."""
    diff = corner_distance(got, expected, inputs, size)
    if not diff <= TOLERANCE_PX:
        raise StganError(f"{path}: the {name} export puts the object's corners {diff:.2e} px from where "
                         f"PyTorch puts them (> {TOLERANCE_PX:g} px at {size[0]}x{size[1]}); it was not kept")
    return diff
