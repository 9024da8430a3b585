"""The schedule: which stage a global step belongs to, and the learning rates at that step.

Stages, in order (any of length 0 is skipped)::

    pretrain      G_1 alone, supervised: undo random perturbations (paired data)
    d_pretrain    D alone, on real images vs perturbed composites
    warp1..warpN  G_i adversarially, G_1..G_{i-1} frozen; G_i starts as a copy of G_{i-1}; one D throughout
                  (the paper's architecture only: a shared update block has no per-generator stages)
    end_to_end    all generators together
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..model import archs


@dataclass
class Stage:
    name: str
    steps: int
    start: int  # global step at which it begins

    @property
    def warp_index(self) -> int | None:
        """1-based generator trained in a ``warpK`` stage."""
        return int(self.name[4:]) if self.name.startswith("warp") else None

    @property
    def end(self) -> int:
        return self.start + self.steps


def schedule(cfg) -> list[Stage]:
    s = cfg.stages
    plan = [("pretrain", s.pretrain), ("d_pretrain", s.d_pretrain)]
    if archs.get(cfg.model.arch).sequential_stages:
        plan += [(f"warp{i}", s.warp) for i in range(1, cfg.model.warps + 1)]
    plan += [("end_to_end", s.end_to_end)]
    stages, start = [], 0
    for name, steps in plan:
        if steps > 0:
            stages.append(Stage(name, steps, start))
            start += steps
    return stages


def stage_at(stages: list[Stage], step: int) -> Stage:
    for s in stages:
        if s.start <= step < s.end:
            return s
    return stages[-1]


def base_lr(stage: Stage, o) -> float:
    """The generators' rate in ``stage`` before any decay (``o``: the config's ``optim``)."""
    if stage.name == "pretrain":
        return o.lr_pretrain
    if stage.name == "end_to_end":
        return o.lr_end_to_end or o.lr_g
    return o.lr_g


def learning_rates(stage: Stage, step: int, o) -> tuple[float, float]:
    """``(generators, discriminator)`` rates at global ``step``: a one-cycle rate for supervised
    pre-training when asked (linear warm-up over whole steps, then a cosine to the floor), else steps
    of ``lr_decay_factor`` every ``lr_decay_every`` steps of the stage, no lower than the floor."""
    k = step - stage.start
    if stage.name == "pretrain" and o.schedule == "onecycle":
        warm = max(1, round(o.warmup * stage.steps))
        if k < warm:
            decay = (k + 1) / warm
        else:
            t = k / max(stage.steps, 1)
            cos = 0.5 * (1 + math.cos(math.pi * (t - o.warmup) / max(1 - o.warmup, 1e-9)))
            decay = o.lr_decay_floor + (1 - o.lr_decay_floor) * cos
        return o.lr_pretrain * decay, o.lr_d  # D does not train in this stage
    decay = 1.0
    if o.lr_decay_every > 0:
        decay = max(o.lr_decay_factor ** (k // o.lr_decay_every), o.lr_decay_floor)
    return base_lr(stage, o) * decay, o.lr_d * decay


def harm_weight(stage: Stage, step: int, o) -> float:
    """The hinge's weight at global ``step`` of pre-training: ``o.harm_weight``, reached linearly over
    the first ``o.harm_warmup`` of the stage."""
    warm = o.harm_warmup * stage.steps
    if warm <= 0:
        return o.harm_weight
    return o.harm_weight * min(1.0, (step - stage.start + 1) / warm)
