"""A model folder's ``config.yaml`` as a typed object: what the generators are, where an object
goes with no box, the trust region, and where the model came from.  Every key and type is checked,
so a hand-edited file gets one line naming the key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..core.perturb import PAPER_STD
from ..errors import StganError
from ..files import schema
from ..files.schema import accepts, mapping, number, sequence


@dataclass
class Placement:
    """Where a cut-out goes when the user gives no box: centre as fractions of the background
    ``(x, y)`` and object width as a fraction of the background width."""

    center: tuple[float, float] = field(default=(0.5, 0.6), metadata=accepts(sequence(
        number(lo=0, hi=1), 2, what="two numbers in [0, 1] (x, y as fractions of the background)")))
    scale: float = field(default=0.4, metadata=accepts(number(
        above=0, hi=10, what="a number in (0, 10] (object width / background width)")))


TRUST_KEYS = ("move", "scale", "rotate", "shape")  # stgan_cli.core.trust_region.Limits


@dataclass
class ModelConfig:
    name: str = "unnamed"
    arch: str = "paper"  # the warp predictor (stgan_cli.model.archs)
    image_size: tuple[int, int] = field(default=(120, 160), metadata=accepts(sequence(
        number(lo=32, whole=True), 2, what="two whole numbers >= 32 (height, width)")))  # the generators' frame
    warps: int = field(default=5, metadata=accepts(number(lo=1, whole=True)))
    # How many generators composite, eval and export run unless told otherwise (None: all of them);
    # chosen on held-out data where later iterations stop helping.
    default_iterations: int | None = field(default=None, metadata=accepts(number(lo=1, whole=True, optional=True)))
    domain: str = "generic"  # indoor | glasses | generic
    discriminator: bool = True  # whether model.safetensors keeps D (for realism scores)
    placement: Placement = field(default_factory=Placement)
    # Inference limits on what a correction may do to the object (stgan_cli.core.trust_region); None:
    # derived from the training perturbation in provenance.
    trust_region: dict | None = field(default=None, metadata=accepts(mapping(
        TRUST_KEYS, number(above=0), optional=True, what="a mapping of move, scale, rotate, shape to positive numbers")))
    # The object's window is read from the photo at this many times the frame's size (crop and lite
    # refiners; 0: from the frame itself).  Small objects then get the window's pixels too.
    detail: int = field(default=0, metadata=accepts(number(
        lo=0, hi=8, whole=True, what="a whole number from 0 to 8 (0: the window is read from the frame)")))
    provenance: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ModelConfig":
        """A config from parsed YAML (:func:`stgan_cli.files.schema.merge` over the defaults); a
        hand-edited file gets one line naming the key, not a traceback later."""
        cfg = cls()
        schema.merge(cfg, data, source)
        cfg.check(source)
        return cfg

    def check(self, source: str) -> None:
        """What the settings must agree on."""
        k = self.default_iterations
        if k is not None and not k <= self.warps:
            raise StganError(f"{source}: default_iterations must be a whole number from 1 to warps ({self.warps}), "
                             f"or null, not {k}")

    @property
    def trained_perturbation(self) -> tuple[float, float]:
        """The sl(3) std of every parameter and the translations' extra std the model was trained
        with (its provenance), else the paper's."""
        trained = (self.provenance or {}).get("perturbation") or {}
        return (float(trained.get("homography", PAPER_STD[0])), float(trained.get("translation", PAPER_STD[1])))

    @property
    def iterations(self) -> int:
        """The generators a model runs by default."""
        return self.default_iterations or self.warps

    @property
    def detail_size(self) -> tuple[int, int] | None:
        """(height, width) the object's window is read from, or None (the frame)."""
        return (self.image_size[0] * self.detail, self.image_size[1] * self.detail) if self.detail else None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        d["placement"]["center"] = list(self.placement.center)
        return d

