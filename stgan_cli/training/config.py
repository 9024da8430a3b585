"""Training configuration: defaults < YAML file < ``--set key=value``; unknown keys are refused.

The ``model:`` section is a model folder's ``config.yaml`` (:class:`~stgan_cli.model.config.ModelConfig`,
one schema, checked by the same code): what a run trains is what its model folder says it is.

Defaults start from the original code's values (see ``../shared/DESIGN.md``): batch 20, lrD 1e-4,
two D updates per G update, trust-region weight 0.3, perturbations 0.1 / 0.1.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StganError, UsageError, suggest
from ..model.config import ModelConfig

# Run folders and configs from before the model section was the model folder's schema.
_OLD_MODEL_KEYS = {"placement_center": "center", "placement_scale": "scale"}


@dataclass
class DataSection:
    path: str | None = None
    kind: str = "paired"  # paired | unpaired | glasses (a `stgan data glasses` folder, at its true pose)
    split: str | None = "train"  # sub-folder to train on, when the dataset has splits
    eval_split: str | None = "test"  # held-out sub-folder for metrics; None: the last eval_samples of train
    eval_samples: int = 64
    # Paired data: more dataset folders (their `split` sub-folder when they have one) mixed into
    # training, and the share of each batch they give together (in proportion to their sizes);
    # held-out metrics stay on `path`.  E.g. real photo pairs with generated rooms.
    mix: list = field(default_factory=list)
    mix_share: float = 0.5


@dataclass
class PerturbSection:
    homography: float = 0.1  # std of every sl(3) parameter
    translation: float = 0.1  # extra std of p1, p5 (canonical units)
    background: float = 0.0  # unpaired: std of the random warp of backgrounds
    # Paired data: std of a tiny sl(3) warp (sub-pixel) applied to the object in D's real images, so
    # that real and fake objects both pass through the same bilinear resampling.  Without it the
    # critic can tell them apart by interpolation blur alone and gives the generators no geometric
    # signal (measured: it scored a 6 px misplaced but unresampled object as real as the truth).
    real_jitter: float = 0.0
    # Paired data, doing no harm: the share of samples that start at the truth (the generators learn
    # that a right placement needs no correction), and the share that start where a user's rough box
    # would put the object (its box shifted by box_std of its size, scaled by exp(N(0, box_std)));
    # the rest get the sl(3) noise above.  0 and 0: the paper's perturbation only.
    truth_share: float = 0.0
    box_share: float = 0.0
    box_std: float = 0.12
    # Pairs cut from real photos (``stgan data from-photos``): the share of their samples that get a
    # decoy hole at the mirror of the truth about the start (training/decoys.py), so that the filled
    # hole no longer says where the object belongs.
    decoy_share: float = 0.0
    # Paired data: the share of samples mirrored left to right, background and object together (the
    # truth stays the identity).  A mirrored room is as plausible as the room, so the ~1,250 real
    # pairs count twice instead of being read ~50 times each.
    flip: float = 0.0


@dataclass
class StagesSection:
    pretrain: int = 0  # supervised steps of G_1: undo random perturbations (indoor)
    d_pretrain: int = 0  # D-only steps before the warps (glasses)
    warp: int = 1000  # steps of each sequential warp stage G_1..G_N
    end_to_end: int = 0  # steps training all generators together at the end


@dataclass
class OptimSection:
    batch_size: int = 20
    grad_accum: int = 1  # micro-batches per update: batch_size is split into this many
    lr_pretrain: float = 1e-4
    # Supervised pre-training applies G_1 this many times in a row, each time to its own (detached)
    # result, with the corner loss after every application: G_1 then also learns to correct its own
    # residuals, and G_2.. (its copies) start as refiners instead of over-correcting small errors.
    pretrain_rounds: int = 1
    # The supervised loss on the object's box corners: mse (squared canonical distance, the original)
    # or l1 (mean absolute pixel offset at the model size, as iterative homography networks use).
    corner_loss: str = "mse"
    optimizer: str = "adam"  # adam | adamw (for the generators; D keeps Adam)
    weight_decay: float = 0.0  # adamw only
    # Supervised pre-training's rate: "step" (lr_decay_* below) or "onecycle" (linear warm-up over
    # the first `warmup` of the stage to lr_pretrain, then cosine down to lr_decay_floor of it).
    schedule: str = "step"
    warmup: float = 0.05
    grad_clip: float = 0.0  # max norm of the generators' gradient (0 = off)
    # Paired data: weight of the supervised corner loss (as in pre-training) added to the generators'
    # adversarial loss in the warp and end-to-end stages (averaged over every trained iterate);
    # 0 = the paper's purely adversarial stages.
    supervised_weight: float = 0.0
    # Supervised steps, doing no harm: weight of a hinge on each sample's corner error after a round
    # beyond its error at the start, ``relu(err_r - err_0)`` (pixels, as the L1 corner loss).  The L1
    # loss alone is indifferent to whether a case ends better or worse than it began; this makes a
    # correction that leaves a case worse cost more than one that falls short.
    harm_weight: float = 0.0
    # The hinge's weight rises linearly from 0 over this fraction of pre-training: a model held to
    # "never worse" from its first step settles on correcting nothing, and learns to correct slowly.
    harm_warmup: float = 0.0
    # Measure the hinge in the object's own size (its box's mean half-size, relative to that of a
    # 40 x 30 px box) instead of frame pixels: a small object made worse by one pixel then costs what
    # a large one made worse by several does (the real photos' table counts cases, not pixels).
    harm_relative: bool = False
    # A pretrained backbone's parameters (model.arch refiner-lite) learn at this fraction of the rate.
    backbone_lr_scale: float = 0.1
    lr_g: float = 1e-6
    lr_d: float = 1e-4
    lr_end_to_end: float | None = None  # None: lr_g
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    lr_decay_every: int = 0  # steps; 0 = constant
    lr_decay_factor: float = 0.5
    lr_decay_floor: float = 0.0  # the decay stops at this fraction of the base rate
    d_steps: int = 2  # D updates per G update
    gp_weight: float = 10.0
    trust_weight: float = 0.3
    history: int = 0  # size of the buffer of old fakes D also sees (0 = off)


@dataclass
class RunSection:
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    eval_every: int = 200
    sample_every: int = 200
    checkpoint_every: int = 200
    channels_last: bool = True  # memory format of the convolutions (same maths, faster on CPU)
    precision: str = "fp32"  # fp32 | bf16 (autocast of the generators' supervised steps on CPU)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="stgan"))
    data: DataSection = field(default_factory=DataSection)
    perturb: PerturbSection = field(default_factory=PerturbSection)
    stages: StagesSection = field(default_factory=StagesSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict:
        out = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["model"] = self.model.to_dict()
        return out

    def architecture(self) -> dict:
        """What a checkpoint must agree on to be resumed."""
        return {"arch": self.model.arch, "warps": self.model.warps, "image_size": list(self.model.image_size)}


def _merge(obj, data: dict, source: str, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise UsageError(f"{source}: {prefix.rstrip('.') or 'the file'} should be a mapping of settings")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise UsageError(f"{source}: unknown key '{prefix}{key}'{suggest(str(key), fields)}")
        current = getattr(obj, key)
        if isinstance(current, ModelConfig):
            setattr(obj, key, _merge_model(current, value, source))
        elif dataclasses.is_dataclass(current):
            _merge(current, value, source, f"{prefix}{key}.")
        else:
            setattr(obj, key, _coerce(value, fields[key].type, f"{source}: {prefix}{key}"))


def _merge_model(current: ModelConfig, data, source: str) -> ModelConfig:
    """The ``model:`` settings over ``current``, checked as a model folder's config is."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: model should be a mapping of settings")
    data = dict(data)
    merged = current.to_dict()
    for old, new in _OLD_MODEL_KEYS.items():
        if old in data:
            merged["placement"][new] = data.pop(old)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return ModelConfig.from_dict(merged, f"{source}: model")


def _coerce(value, annotation: str, name: str):
    """The value as the field's declared type: YAML reads ``1e-5`` as a string, for one."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise UsageError(f"{name}: needs a value")
    base = annotation.replace("| None", "").strip()
    try:
        if base == "float" and not isinstance(value, bool):
            number = float(value)
            if not math.isfinite(number):
                raise UsageError(f"{name}: must be a finite number, not {value!r}")
            return number
        if base == "int" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if base == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "yes", "no", "1", "0"):
                return str(value).lower() in ("true", "yes", "1")
            raise ValueError
        if base == "list":
            if not isinstance(value, list):
                raise ValueError
            return value
        if base == "str":
            return str(value)
    except UsageError:
        raise
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{name}: expected {base}, got {value!r}") from None
    return value


# Numbers that must be above zero, and counts that must be at least one; every other number of the
# sections below must be >= 0 (checked by _check_signs), and every float finite (_coerce).
_POSITIVE = {"optim.lr_pretrain", "optim.lr_g", "optim.lr_d", "optim.lr_end_to_end", "optim.lr_decay_factor"}
_AT_LEAST_ONE = {"data.eval_samples", "optim.batch_size", "optim.grad_accum", "optim.pretrain_rounds",
                 "optim.d_steps", "run.log_every"}


def _check_signs(cfg: TrainConfig) -> None:
    for section in ("data", "perturb", "stages", "optim", "run"):
        for f in dataclasses.fields(getattr(cfg, section)):
            key, value = f"{section}.{f.name}", getattr(getattr(cfg, section), f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if key in _POSITIVE and not value > 0:
                raise UsageError(f"config: {key} must be above 0, not {value:g}")
            if key in _AT_LEAST_ONE and value < 1:
                raise UsageError(f"config: {key} must be at least 1, not {value:g}")
            if value < 0:
                raise UsageError(f"config: {key} must be >= 0, not {value:g}")
    betas = cfg.optim.betas
    if not (len(betas) == 2 and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                                    for b in betas)):
        raise UsageError(f"config: optim.betas must be two numbers in [0, 1), not {betas!r}")


def _check(cfg: TrainConfig) -> None:
    def need(cond, msg):
        if not cond:
            raise UsageError(f"config: {msg}")

    _check_signs(cfg)

    from ..model import archs

    need(cfg.model.arch in archs.names(), f"model.arch is one of {', '.join(archs.names())}, not '{cfg.model.arch}'"
         f"{suggest(cfg.model.arch, archs.names())}")
    need(cfg.optim.corner_loss in ("mse", "l1"), f"optim.corner_loss is mse or l1, not '{cfg.optim.corner_loss}'")
    need(cfg.optim.optimizer in ("adam", "adamw"), f"optim.optimizer is adam or adamw, not '{cfg.optim.optimizer}'")
    need(cfg.optim.schedule in ("step", "onecycle"), f"optim.schedule is step or onecycle, not '{cfg.optim.schedule}'")
    need(0 <= cfg.optim.warmup < 1, "optim.warmup is a fraction of the stage, in [0, 1)")
    need(cfg.optim.grad_clip >= 0 and cfg.optim.weight_decay >= 0, "optim.grad_clip and weight_decay must be >= 0")
    need(cfg.run.precision in ("fp32", "bf16"), f"run.precision is fp32 or bf16, not '{cfg.run.precision}'")
    need(cfg.data.kind in ("paired", "unpaired", "glasses"),
         f"data.kind is paired, unpaired or glasses, not '{cfg.data.kind}'")
    need(cfg.optim.batch_size >= 1 and cfg.optim.grad_accum >= 1, "optim.batch_size and grad_accum >= 1")
    need(cfg.optim.pretrain_rounds >= 1, "optim.pretrain_rounds must be >= 1")
    need(not cfg.data.mix or cfg.data.kind == "paired", "data.mix needs paired data")
    need(0 < cfg.data.mix_share < 1, "data.mix_share is a share of each batch, in (0, 1)")
    need(cfg.perturb.real_jitter >= 0, "perturb.real_jitter must be >= 0")
    need(0 <= cfg.perturb.truth_share and 0 <= cfg.perturb.box_share and
         cfg.perturb.truth_share + cfg.perturb.box_share <= 1, "perturb.truth_share + box_share is a share, in [0, 1]")
    need(cfg.perturb.box_std >= 0, "perturb.box_std must be >= 0")
    need(0 <= cfg.perturb.decoy_share <= 1, "perturb.decoy_share is a share, in [0, 1]")
    need(cfg.data.kind == "paired" or cfg.perturb.decoy_share == 0, "perturb.decoy_share needs paired data")
    need(0 <= cfg.perturb.flip <= 1, "perturb.flip is a share, in [0, 1]")
    need(cfg.data.kind == "paired" or cfg.perturb.flip == 0, "perturb.flip needs paired data")
    need(not cfg.model.detail or archs.reads_detail(cfg.model.arch),
         f"model.detail needs an architecture with a window (refiner-crop, refiner-lite), not '{cfg.model.arch}'")
    need(not cfg.model.detail or cfg.data.kind == "paired", "model.detail needs paired data (photos at that size)")
    need(cfg.optim.harm_weight >= 0, "optim.harm_weight must be >= 0")
    need(0 <= cfg.optim.harm_warmup <= 1, "optim.harm_warmup must be in [0, 1]")
    need(cfg.data.kind in ("paired", "glasses") or cfg.perturb.truth_share + cfg.perturb.box_share == 0,
         "perturb.truth_share and box_share need paired or glasses data (the true placement)")
    need(cfg.optim.supervised_weight == 0 or cfg.data.kind != "unpaired",
         "optim.supervised_weight needs paired data (the true placement)")
    need(cfg.optim.batch_size % cfg.optim.grad_accum == 0, "optim.batch_size must be divisible by grad_accum")
    need(cfg.optim.d_steps >= 1, "optim.d_steps >= 1")
    need(0 <= cfg.optim.lr_decay_floor <= 1, "optim.lr_decay_floor is a fraction of the rate, in [0, 1]")
    for name in ("pretrain", "d_pretrain", "warp", "end_to_end"):
        need(getattr(cfg.stages, name) >= 0, f"stages.{name} >= 0")
    need(cfg.data.kind != "unpaired" or cfg.stages.pretrain == 0, "supervised pre-training needs paired data")


def parse_set(items: list[str]) -> dict:
    """``["optim.lr_g=1e-5", "model.warps=3"]`` -> nested dict (values parsed as YAML)."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item}: expected key=value, e.g. optim.lr_g=1e-5")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        if not all(parts):
            raise UsageError(f"--set {item}: '{key}' is not a setting name (e.g. optim.lr_g)")
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {item}: '{'.'.join(parts[:depth + 1])}' was set to a value "
                                 "by an earlier --set, so it has no settings inside")
        if isinstance(node.get(parts[-1]), dict):
            raise UsageError(f"--set {item}: '{key}' is a group of settings, set one of them "
                             f"(e.g. {key}.{next(iter(node[parts[-1]]))}=...)")
        node[parts[-1]] = value
    return out


def load(path: str | Path | None = None, overrides: list[str] | None = None,
         model: ModelConfig | None = None) -> TrainConfig:
    """Defaults < the YAML file < ``model`` (a model to continue: its folder's config replaces the
    file's model section) < ``overrides``."""
    from ..files.yamlio import read_yaml

    cfg = TrainConfig()
    if path is not None:
        _merge(cfg, read_yaml(path) or {}, str(path))
    if model is not None:
        cfg.model = model
    if overrides:
        _merge(cfg, parse_set(overrides), "--set")
    _check(cfg)
    return cfg


def save(cfg: TrainConfig, path: Path) -> None:
    import yaml

    from ..files import atomic

    atomic.write_bytes(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
