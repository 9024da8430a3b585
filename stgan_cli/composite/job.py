"""What a composite job is asked (:class:`Options`, checked before any work) and what it gives
back: each item prepared, rendered in memory, and its result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..files import imageio
from . import compositing
from .inputs import Item
from .placement import Slot


@dataclass
class Options:
    iterations: int | None = None  # None: the model's default_iterations (all generators if it has none)
    box: tuple[float, float, float, float] | None = None
    at: tuple[float, float] | None = None
    scale: float | None = None
    init: Path | None = None
    save_warp: bool = False
    save_mask: bool = False
    steps_dir: Path | None = None
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS
    batch_size: int = 8
    place: str = "auto"  # auto (faces for a glasses model, the critic's search for an indoor one) | face | scene
    candidates: int = 1000  # boxes the critic scores with --place auto
    top_k: int = 1  # with --place auto: also composite the next K-1 best boxes
    heatmap: bool = False  # with --place auto: write the critic's map
    critic: str | None = None  # the placement critic (a model folder or name; default: placement)
    harmonize: bool = False  # match the object's colours to the photo
    harmonizer: str | None = None  # the harmonizer (a model folder or name; default: harmonize)
    faces: str = "all"  # all | largest
    detector: str = "auto"  # auto | landmarks | haar (stgan_cli.composite.faces.DETECTORS)
    skip_glasses_faces: bool = False  # leave faces that already wear glasses
    exclusive: bool = False  # never replace an output that exists when it is written (batches)
    trust_region: str = "default"  # default | off | key=value,... (stgan_cli.core.trust_region.parse)
    engine: str = "auto"  # auto | torch | onnx (stgan_cli.model.onnx_engine.choose)

    def check(self) -> None:
        """Refuse contradicting or malformed options in one line (named as the command line names
        them), before any work."""
        from ..core.trust_region import Limits, parse as parse_trust
        from ..model.onnx_engine import ENGINES
        from .faces import DETECTORS

        if self.box and self.at:
            raise UsageError("--box and --at both set the initial placement: give one")
        if self.init and (self.box or self.at or self.scale is not None):
            raise UsageError("--init already fixes the placement: drop --box/--at/--scale")
        if self.iterations is not None and self.iterations < 0:
            raise UsageError("--iterations must be 0 or more")
        if self.place not in ("auto", "face", "scene"):
            raise UsageError(f"--place {self.place}: expected auto, face or scene")
        if self.faces not in ("all", "largest"):
            raise UsageError(f"--faces {self.faces}: expected all or largest")
        if self.detector not in DETECTORS:
            raise UsageError(f"--detector {self.detector}: expected one of {', '.join(DETECTORS)}")
        if self.scale is not None and not math.isfinite(self.scale):
            raise UsageError(f"--scale {self.scale}: must be a finite number (no nan or inf)")
        if self.scale is not None and not 0 < self.scale <= 100:
            raise UsageError(f"--scale {self.scale:g}: expected a positive fraction of the background width "
                             "(at most 100)")
        if self.box and not (self.box[2] > self.box[0] and self.box[3] > self.box[1]):
            raise UsageError(f"--box {','.join(f'{v:g}' for v in self.box)}: expected X1,Y1,X2,Y2 with X2 > X1 "
                             "and Y2 > Y1")
        parse_trust(self.trust_region, Limits())
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: expected one of {', '.join(ENGINES)}")


@dataclass
class Prepared:
    item: Item
    bg: imageio.Picture
    cutout: compositing.Cutout
    slots: list[Slot]
    timings: dict = field(default_factory=dict)
    clamped: bool = False  # the trust region shortened a correction
    limits: dict | None = None  # the trust region's limits for the (first) object
    notes: list[str] = field(default_factory=list)  # for the user: what was found and left out
    search: object | None = None  # --place auto: stgan_cli.composite.auto.Search
    alternatives: list[Slot] = field(default_factory=list)  # --top-k: the next best boxes, corrected too


@dataclass
class Rendered:
    image: np.ndarray  # the composite, the background's size, channels and dtype
    alpha: np.ndarray  # the objects' mask over it, float32 in [0, 1]
    homs: list  # per object, the homography (background from foreground pixels) after each iteration
    alternatives: list  # the same for --top-k's other boxes
    params: np.ndarray  # per object, the warp parameters after each iteration
    harmonize: dict | None  # what --harmonize did


@dataclass
class Result:
    item: Item
    status: str  # ok | failed | skipped
    error: str | None = None
    homography: list | None = None
    timings: dict = field(default_factory=dict)
    clamped: bool = False
    notes: list[str] = field(default_factory=list)
    placement: dict | None = None  # --place auto: the chosen box, its score, the candidates' count
    harmonize: dict | None = None  # --harmonize: the harmonizer and what it did to each object's colours

    @classmethod
    def failure(cls, item: Item, message: str) -> "Result":
        """A failed item, its line always saying which files it is about."""
        if not (str(item.bg) in message or str(item.fg) in message or (item.mask and str(item.mask) in message)):
            message = f"{item.fg} on {item.bg}: {message}"
        return cls(item, "failed", error=message)

    def to_json(self) -> dict:
        d = {"foreground": str(self.item.fg), "background": str(self.item.bg), "output": str(self.item.out),
             "status": self.status}
        if self.error:
            d["error"] = self.error
        if self.homography is not None:
            d["homography"] = self.homography
            d["clamped"] = self.clamped
        if self.notes:
            d["notes"] = self.notes
        if self.placement is not None:
            d["placement"] = self.placement
        if self.harmonize is not None:
            d["harmonize"] = self.harmonize
        if self.timings:
            d["seconds"] = {k: round(v, 4) for k, v in self.timings.items()}
        return d
