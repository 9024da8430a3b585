"""A model folder's ``config.yaml`` as a typed object: what the generators are, where an object
goes with no box, the trust region, and where the model came from.  Every key and type is checked,
so a hand-edited file gets one line naming the key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import StganError, suggest


@dataclass
class Placement:
    """Where a cut-out goes when the user gives no box: centre as fractions of the background
    ``(x, y)`` and object width as a fraction of the background width."""

    center: tuple[float, float] = (0.5, 0.6)
    scale: float = 0.4


@dataclass
class ModelConfig:
    name: str = "unnamed"
    arch: str = "paper"  # the warp predictor (stgan_cli.model.archs)
    image_size: tuple[int, int] = (120, 160)  # (height, width) the generators run at
    warps: int = 5
    # How many generators composite, eval and export run unless told otherwise (None: all of them);
    # chosen on held-out data where later iterations stop helping.
    default_iterations: int | None = None
    domain: str = "generic"  # indoor | glasses | generic
    discriminator: bool = True  # whether model.safetensors keeps D (for realism scores)
    placement: Placement = field(default_factory=Placement)
    # Inference limits on what a correction may do to the object (stgan_cli.core.trust_region); None:
    # derived from the training perturbation in provenance.
    trust_region: dict | None = None
    # The object's window is read from the photo at this many times the frame's size (crop and lite
    # refiners; 0: from the frame itself).  Small objects then get the window's pixels too.
    detail: int = 0
    provenance: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ModelConfig":
        """A config from parsed YAML; every key and type is checked, so a hand-edited file gets one
        line naming the key, not a traceback later."""
        if not isinstance(data, dict):
            raise StganError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise StganError(f"{source}: unknown key '{key}'{suggest(str(key), names)}")
        data = dict(data)
        place = data.pop("placement", None)
        place = {} if place is None else place
        if not isinstance(place, dict):
            raise StganError(f"{source}: placement must be a mapping (center: [x, y], scale: s), "
                             f"got {type(place).__name__}")
        pnames = {f.name for f in dataclasses.fields(Placement)}
        for key in place:
            if key not in pnames:
                raise StganError(f"{source}: unknown key 'placement.{key}'{suggest(str(key), pnames)}")
        bad = lambda key, what: StganError(f"{source}: {key} must be {what}")
        if not isinstance(data.get("name", ""), str):
            raise bad("name", "text")
        if not isinstance(data.get("arch", "paper"), str):
            raise bad("arch", "text (an architecture name)")
        if not isinstance(data.get("domain", "generic"), str):
            raise bad("domain", "text (indoor, glasses or generic)")
        if not isinstance(data.get("discriminator", True), bool):
            raise bad("discriminator", "true or false")
        if not isinstance(data.get("provenance", {}) or {}, dict):
            raise bad("provenance", "a mapping")
        data["provenance"] = data.get("provenance") or {}
        trust = data.get("trust_region")
        if trust is not None and not (isinstance(trust, dict) and all(
                k in ("move", "scale", "rotate", "shape") and _number(v) and v > 0 for k, v in trust.items())):
            raise bad("trust_region", "a mapping of move, scale, rotate, shape to positive numbers")
        size = data.get("image_size", (120, 160))
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(_whole(v) and v >= 32 for v in size)):
            raise bad("image_size", "two whole numbers >= 32 (height, width)")
        if not (_whole(data.get("warps", 5)) and data.get("warps", 5) >= 1):
            raise bad("warps", "a whole number >= 1")
        if not (_whole(data.get("detail", 0)) and 0 <= data.get("detail", 0) <= 8):
            raise bad("detail", "a whole number from 0 to 8 (0: the window is read from the frame)")
        k = data.get("default_iterations")
        if k is not None and not (_whole(k) and 1 <= k <= data.get("warps", 5)):
            raise bad("default_iterations", f"a whole number from 1 to warps ({data.get('warps', 5)}), or null")
        center = place.get("center", (0.5, 0.6))
        if not (isinstance(center, (list, tuple)) and len(center) == 2 and all(_fraction(v) for v in center)):
            raise bad("placement.center", "two numbers in [0, 1] (x, y as fractions of the background)")
        scale = place.get("scale", 0.4)
        if not (_number(scale) and 0 < scale <= 10):
            raise bad("placement.scale", "a number in (0, 10] (object width / background width)")
        cfg = cls(**data, placement=Placement(center=tuple(float(v) for v in center), scale=float(scale)))
        cfg.image_size, cfg.warps = tuple(int(v) for v in size), int(cfg.warps)
        cfg.default_iterations = None if k is None else int(k)
        return cfg

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


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v) -> bool:
    return _number(v) and float(v).is_integer()


def _fraction(v) -> bool:
    return _number(v) and 0.0 <= v <= 1.0
