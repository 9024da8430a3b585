"""The Python API: composite inside your own code, with what ``stgan composite`` does.

    import stgan_cli as stgan

    model = stgan.load("indoor")                       # once: a registry name, a folder or hf-hub:ORG/REPO
    result = model.composite("sofa.png", room_array, box=(120, 250, 330, 470), harmonize=True)
    result.image                                       # numpy, the background's size, channels and dtype
    result.homography, result.steps                    # the final warp, and the warp after each generator

Foregrounds, masks and backgrounds may be paths, numpy arrays (RGB or RGBA, uint8, uint16 or float
in [0, 1]) or PIL images.  The placement options are those of the command line; nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import imageio
from .errors import StganError


@dataclass
class Composite:
    image: np.ndarray  # the composite: the background's size, channels and dtype (RGB order)
    mask: np.ndarray  # where the object is in it, float32 in [0, 1]
    homography: np.ndarray  # background pixels from foreground pixels, after the last generator (3x3)
    steps: list[np.ndarray]  # the same after each iteration, the initial placement first
    objects: list[np.ndarray] = field(default_factory=list)  # with several faces: each one's final warp
    placement: dict | None = None  # with no box: the box the placement critic chose, its score
    harmonize: dict | None = None  # with harmonize=True: what the harmonizer did
    clamped: bool = False  # the trust region shortened the correction
    notes: list[str] = field(default_factory=list)


def picture(value, role: str, max_pixels: int = imageio.DEFAULT_MAX_PIXELS) -> imageio.Picture:
    """A path, a numpy array or a PIL image as the pipeline's :class:`~stgan_cli.files.imageio.Picture`."""
    if isinstance(value, (str, os.PathLike)):
        return imageio.read_image(Path(value), max_pixels)
    if hasattr(value, "mode") and hasattr(value, "size") and not isinstance(value, np.ndarray):  # PIL
        value = np.asarray(value.convert("RGBA" if "A" in value.mode or value.mode == "P" else "RGB"))
    if not isinstance(value, np.ndarray):
        raise StganError(f"{role}: expected a path, a numpy array or a PIL image, not {type(value).__name__}")
    pixels = value
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)) or 0 in pixels.shape:
        raise StganError(f"{role}: expected an image array (H, W), (H, W, 3) or (H, W, 4), not {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all():
            raise StganError(f"{role}: the array holds NaN or infinite values")
        pixels = np.round(np.clip(pixels, 0, 1) * 65535).astype(np.uint16)
    elif pixels.dtype not in (np.uint8, np.uint16):
        raise StganError(f"{role}: expected uint8, uint16 or float pixels, not {pixels.dtype}")
    if pixels.shape[0] * pixels.shape[1] > max_pixels:
        raise StganError(f"{role}: {pixels.shape[1]}x{pixels.shape[0]} is over max_pixels ({max_pixels})")
    return imageio.Picture(np.ascontiguousarray(pixels), None, "array", f"<{role} array>")


class Stgan:
    """A model opened once, to composite many times (:func:`load`)."""

    def __init__(self, model: str | os.PathLike | None = None, device: str = "cpu", engine: str = "auto",
                 offline: bool = False):
        from .model import modelstore
        from .model.onnx_engine import ENGINES

        if engine not in ENGINES:
            raise StganError(f"engine {engine}: expected one of {', '.join(ENGINES)}")
        self.model = modelstore.open_model(None if model is None else str(model), offline)
        self.device, self.engine = device, engine
        self._last = None  # the previous call's compositor

    def composite(self, fg, bg, *, mask=None, box=None, at=None, scale: float | None = None,
                  iterations: int | None = None, place: str = "auto", harmonize: bool = False,
                  harmonizer: str | None = None, critic: str | None = None, candidates: int = 1000,
                  faces: str = "all", trust_region: str = "default",
                  max_pixels: int = imageio.DEFAULT_MAX_PIXELS) -> Composite:
        """``fg`` (an RGBA cut-out, or RGB with ``mask``) put into ``bg`` and corrected by the model's
        generators.  ``box`` (x1, y1, x2, y2) or ``at`` (cx, cy) in background pixels and ``scale``
        (object width over background width) start it, as ``--box``/``--at``/``--scale`` do; with none of
        them an indoor model lets the placement critic choose (``place="auto"``) and a glasses model
        finds faces."""
        from .composite.inputs import Item
        from .composite.job import Options
        from .composite.pipeline import Compositor

        opts = Options(iterations=iterations, box=None if box is None else tuple(float(v) for v in box),
                       at=None if at is None else tuple(float(v) for v in at), scale=scale, place=place,
                       harmonize=harmonize or harmonizer is not None, harmonizer=harmonizer, critic=critic,
                       candidates=candidates, faces=faces, trust_region=trust_region, engine=self.engine,
                       max_pixels=max_pixels)
        opts.check()  # the command line's checks, in its words
        # the engine, the critic and the harmonizer are opened by the first call and kept
        compositor = self._last = Compositor(self.model, opts, self.device).take_over(self._last)
        item = Item(picture(fg, "foreground", max_pixels), picture(bg, "background", max_pixels), Path("result"),
                    None if mask is None else picture(mask, "mask", max_pixels))
        compositor.ready()
        prep = compositor.prepare(item)
        rendered = compositor.render(prep, compositor.predict([prep])[0])
        chosen = None if prep.search is None else prep.search.summary(prep.bg.size, 1)
        return Composite(rendered.image, rendered.alpha, rendered.homs[0][-1], rendered.homs[0],
                         [h[-1] for h in rendered.homs], chosen, rendered.harmonize, prep.clamped, prep.notes)


def load(model: str | os.PathLike | None = None, device: str = "cpu", engine: str = "auto",
         offline: bool = False) -> Stgan:
    """Open ``model`` (a registry name such as ``indoor`` or ``glasses``, a model folder, or
    ``hf-hub:ORG/REPO[@REV]``; default ``indoor``) for :meth:`Stgan.composite`."""
    return Stgan(model, device, engine, offline)
