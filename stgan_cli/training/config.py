"""Training configuration: defaults < YAML file < ``--set key=value``; unknown keys are refused.

The ``model:`` section is a model folder's ``config.yaml`` (:class:`~stgan_cli.model.config.ModelConfig`):
what a run trains is what its model folder says it is.  Both are checked by one schema
(:mod:`stgan_cli.files.schema`): each field declares what it accepts, by its type or a rule.

Defaults start from the original code's values (see ``../shared/DESIGN.md``): batch 20, lrD 1e-4,
two D updates per G update, trust-region weight 0.3, perturbations 0.1 / 0.1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..core.perturb import PAPER_STD
from ..errors import UsageError, suggest
from ..files import schema
from ..files.schema import accepts, number, sequence, text
from ..model.config import ModelConfig

# Run folders and configs from before the model section was the model folder's schema.
_OLD_MODEL_KEYS = {"placement_center": "center", "placement_scale": "scale"}
# Every number of a section is >= 0 (its type's rule in stgan_cli.files.schema); these are more.
RATE = number(above=0)
AT_LEAST_ONE = number(lo=1, whole=True)
SHARE = number(lo=0, hi=1, what="a share, in [0, 1]")


@dataclass
class DataSection:
    path: str | None = None
    kind: str = field(default="paired", metadata=accepts(text(("paired", "unpaired", "glasses"))))  # paired | unpaired | glasses (a `stgan data glasses` folder, at its true pose)
    split: str | None = "train"  # sub-folder to train on, when the dataset has splits
    eval_split: str | None = "test"  # held-out sub-folder for metrics; None: the last eval_samples of train
    eval_samples: int = field(default=64, metadata=accepts(AT_LEAST_ONE))
    # Paired data: more dataset folders (their `split` sub-folder when they have one) mixed into
    # training, and the share of each batch they give together (in proportion to their sizes);
    # held-out metrics stay on `path`.  E.g. real photo pairs with generated rooms.
    mix: list = field(default_factory=list)
    mix_share: float = field(default=0.5, metadata=accepts(number(
        above=0, below=1, what="a share of each batch, in (0, 1)")))


@dataclass
class PerturbSection:
    homography: float = PAPER_STD[0]  # std of every sl(3) parameter
    translation: float = PAPER_STD[1]  # extra std of p1, p5 (canonical units)
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
    truth_share: float = field(default=0.0, metadata=accepts(SHARE))
    box_share: float = field(default=0.0, metadata=accepts(SHARE))
    box_std: float = 0.12
    # Pairs cut from real photos (``stgan data from-photos``): the share of their samples that get a
    # decoy hole at the mirror of the truth about the start (training/decoys.py), so that the filled
    # hole no longer says where the object belongs.
    decoy_share: float = field(default=0.0, metadata=accepts(SHARE))
    # Paired data: the share of samples mirrored left to right, background and object together (the
    # truth stays the identity).  A mirrored room is as plausible as the room, so the ~1,250 real
    # pairs count twice instead of being read ~50 times each.
    flip: float = field(default=0.0, metadata=accepts(SHARE))


@dataclass
class StagesSection:
    pretrain: int = 0  # supervised steps of G_1: undo random perturbations (indoor)
    d_pretrain: int = 0  # D-only steps before the warps (glasses)
    warp: int = 1000  # steps of each sequential warp stage G_1..G_N
    end_to_end: int = 0  # steps training all generators together at the end


@dataclass
class OptimSection:
    batch_size: int = field(default=20, metadata=accepts(AT_LEAST_ONE))
    grad_accum: int = field(default=1, metadata=accepts(AT_LEAST_ONE))  # micro-batches per update: batch_size is split into this many
    lr_pretrain: float = field(default=1e-4, metadata=accepts(RATE))
    # Supervised pre-training applies G_1 this many times in a row, each time to its own (detached)
    # result, with the corner loss after every application: G_1 then also learns to correct its own
    # residuals, and G_2.. (its copies) start as refiners instead of over-correcting small errors.
    pretrain_rounds: int = field(default=1, metadata=accepts(AT_LEAST_ONE))
    # The supervised loss on the object's box corners: mse (squared canonical distance, the original)
    # or l1 (mean absolute pixel offset at the model size, as iterative homography networks use).
    corner_loss: str = field(default="mse", metadata=accepts(text(("mse", "l1"))))
    optimizer: str = field(default="adam", metadata=accepts(text(("adam", "adamw"))))  # adam | adamw (for the generators; D keeps Adam)
    weight_decay: float = 0.0  # adamw only
    # Supervised pre-training's rate: "step" (lr_decay_* below) or "onecycle" (linear warm-up over
    # the first `warmup` of the stage to lr_pretrain, then cosine down to lr_decay_floor of it).
    schedule: str = field(default="step", metadata=accepts(text(("step", "onecycle"))))
    warmup: float = field(default=0.05, metadata=accepts(number(lo=0, below=1, what="a fraction of the stage, in [0, 1)")))
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
    harm_warmup: float = field(default=0.0, metadata=accepts(SHARE))
    # Measure the hinge in the object's own size (its box's mean half-size, relative to that of a
    # 40 x 30 px box) instead of frame pixels: a small object made worse by one pixel then costs what
    # a large one made worse by several does (the real photos' table counts cases, not pixels).
    harm_relative: bool = False
    # A pretrained backbone's parameters (model.arch refiner-lite) learn at this fraction of the rate.
    backbone_lr_scale: float = 0.1
    lr_g: float = field(default=1e-6, metadata=accepts(RATE))
    lr_d: float = field(default=1e-4, metadata=accepts(RATE))
    lr_end_to_end: float | None = field(default=None, metadata=accepts(number(above=0, optional=True)))  # None: lr_g
    betas: list = field(default_factory=lambda: [0.5, 0.999], metadata=accepts(sequence(
        number(lo=0, below=1), 2, kind=list, what="two numbers in [0, 1)")))
    lr_decay_every: int = 0  # steps; 0 = constant
    lr_decay_factor: float = field(default=0.5, metadata=accepts(RATE))
    lr_decay_floor: float = field(default=0.0, metadata=accepts(SHARE))  # the decay stops at this fraction of the base rate
    d_steps: int = field(default=2, metadata=accepts(AT_LEAST_ONE))  # D updates per G update
    gp_weight: float = 10.0
    trust_weight: float = 0.3
    history: int = 0  # size of the buffer of old fakes D also sees (0 = off)


@dataclass
class RunSection:
    seed: int = 0
    device: str = "auto"
    log_every: int = field(default=10, metadata=accepts(AT_LEAST_ONE))
    eval_every: int = 200
    sample_every: int = 200
    checkpoint_every: int = 200
    channels_last: bool = True  # memory format of the convolutions (same maths, faster on CPU)
    precision: str = field(default="fp32", metadata=accepts(text(("fp32", "bf16"))))  # fp32 | bf16 (autocast of the generators' supervised steps on CPU)


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


def _merge(cfg: TrainConfig, data, source: str) -> None:
    """``data`` over ``cfg`` (:func:`stgan_cli.files.schema.merge`), the model section's old keys read
    as they were meant."""
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and any(k in model for k in _OLD_MODEL_KEYS):
        model = dict(model)
        place = dict(model.get("placement") or {})
        for old, new in _OLD_MODEL_KEYS.items():
            if old in model:
                place[new] = model.pop(old)
        data = {**data, "model": {**model, "placement": place}}
    schema.merge(cfg, data, source, error=UsageError)


def _check(cfg: TrainConfig) -> None:
    def need(cond, msg):
        if not cond:
            raise UsageError(f"config: {msg}")

    cfg.model.check("config: model")
    from ..model import archs

    need(cfg.model.arch in archs.names(), f"model.arch is one of {', '.join(archs.names())}, not '{cfg.model.arch}'"
         f"{suggest(cfg.model.arch, archs.names())}")
    need(not cfg.data.mix or cfg.data.kind == "paired", "data.mix needs paired data")
    need(cfg.perturb.truth_share + cfg.perturb.box_share <= 1, "perturb.truth_share + box_share is a share, in [0, 1]")
    need(cfg.data.kind == "paired" or cfg.perturb.decoy_share == 0, "perturb.decoy_share needs paired data")
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
