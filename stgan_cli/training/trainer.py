"""One training run: the paper's whole schedule, from supervised pre-training to end-to-end refinement.

Stages, in order (any of length 0 is skipped)::

    pretrain      G_1 alone, supervised: undo random perturbations (paired data)
    d_pretrain    D alone, on real images vs perturbed composites
    warp1..warpN  G_i adversarially, G_1..G_{i-1} frozen; G_i starts as a copy of G_{i-1}; one D throughout
    end_to_end    all generators together

Everything that decides what happens next (weights, optimisers, step, RNG states, the fake history)
is in the checkpoint, so ``--resume`` continues exactly.  With ``torch.distributed`` each rank draws
batches from its own shard and gradients are averaged; rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import archs, atomic, evaluation, geometry, modelstore, nets
from ..data import perturb
from ..data.datasets import GlassesEvalSet, PairedDataset, UnpairedDataset
from ..errors import StganError
from . import checkpoint, config as config_mod, losses, report


@dataclass
class Stage:
    name: str
    steps: int
    start: int  # global step at which it begins

    @property
    def warp_index(self) -> int | None:
        """1-based generator trained in a ``warpK`` stage."""
        return int(self.name[4:]) if self.name.startswith("warp") else None


def schedule(cfg) -> list[Stage]:
    s = cfg.stages
    plan = [("pretrain", s.pretrain), ("d_pretrain", s.d_pretrain)]
    if archs.get(cfg.model.arch).sequential_stages:  # one stage per generator; a shared block has none
        plan += [(f"warp{i}", s.warp) for i in range(1, cfg.model.warps + 1)]
    plan += [("end_to_end", s.end_to_end)]
    stages, start = [], 0
    for name, steps in plan:
        if steps > 0:
            stages.append(Stage(name, steps, start))
            start += steps
    return stages


class Dist:
    """Rank and world of a ``torchrun`` launch (a single process otherwise)."""

    def __init__(self, device: str):
        import os

        import torch.distributed as tdist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average(self, params) -> None:
        if not self.enabled:
            return
        import torch.distributed as tdist

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        tdist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast(self, module) -> None:
        if self.enabled:
            import torch.distributed as tdist

            for t in module.state_dict().values():
                tdist.broadcast(t, 0)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as tdist

            tdist.barrier()
            tdist.destroy_process_group()


class Trainer:
    def __init__(self, cfg, run_dir: Path, device: str, resume: bool = False, init_model: Path | None = None,
                 log=print, progress=None):
        self.cfg, self.run_dir, self.device, self.log, self.progress = cfg, Path(run_dir), device, log, progress
        self.dist = Dist(device)
        self.stages = schedule(cfg)
        self.total = sum(s.steps for s in self.stages)
        torch.manual_seed(cfg.run.seed)
        self.size = tuple(cfg.model.image_size)
        self.net = nets.STGAN(cfg.model.warps, self.size, discriminator=True, arch=cfg.model.arch)
        self.init_note = None
        if init_model is not None:
            self._init_from(init_model)
        self.net.to(device)
        if cfg.run.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.dist.broadcast(self.net)
        self.rng = np.random.default_rng([cfg.run.seed, self.dist.rank])
        self.eval_rng_seed = cfg.run.seed + 12345
        self.opt_d = self._adam(self.net.discriminator.parameters(), cfg.optim.lr_d)
        self.opt_g, self.opt_g_stage = None, None
        self.history: list[torch.Tensor] = []
        self.step = 0
        self._load_data()
        if resume:
            self._resume()
        elif self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config_mod.save(cfg, self.run_dir / "config.yaml")
            (self.run_dir / "metrics.jsonl").write_text("")

    # --- set-up --------------------------------------------------------------------------------

    def _adam(self, params, lr):
        return torch.optim.Adam(params, lr=lr, betas=tuple(self.cfg.optim.betas))

    def _g_optimizer(self, modules, lr):
        o = self.cfg.optim
        params = [p for m in modules for p in m.parameters()]
        if o.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        return self._adam(params, lr)

    def _autocast(self):
        """bf16 autocast of the generators' supervised steps (``run.precision``), else nothing."""
        import contextlib

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

    def _load_data(self) -> None:
        cfg = self.cfg
        if not cfg.data.path:
            raise StganError("no training data: pass --data DIR (or data.path in the config)")
        root = Path(cfg.data.path)
        has_splits = (root / "train").is_dir()
        split = cfg.data.split if has_splits else None
        if cfg.data.kind == "paired":
            self.data = PairedDataset.load(root, self.size, split)
        elif cfg.data.kind == "glasses":
            self.data = GlassesEvalSet.load(root / split if split else root, self.size)
        else:
            self.data = UnpairedDataset.load(root, self.size, split)
        self.eval_data = None
        if cfg.data.kind in ("paired", "glasses"):
            load = (lambda s: PairedDataset.load(root, self.size, s)) if cfg.data.kind == "paired" else \
                (lambda s: GlassesEvalSet.load(root / s, self.size))
            if has_splits and cfg.data.eval_split and (root / cfg.data.eval_split).is_dir():
                self.eval_data = load(cfg.data.eval_split)
            else:
                self.eval_data = self.data
        n = len(self.data) if cfg.data.kind != "unpaired" else len(self.data.bg)
        self.weights = None
        if cfg.data.mix:
            self.data, self.weights = _mixed(self.data, cfg.data.mix, cfg.data.split, self.size, cfg.data.mix_share)
        total = len(self.data) if cfg.data.kind != "unpaired" else n
        shard = np.arange(total)[self.dist.rank::self.dist.world]
        if len(shard) == 0:
            raise StganError(f"{root}: {total} samples cannot be shared by {self.dist.world} processes")
        self.shard = shard
        if self.weights is not None:
            w = self.weights[shard]
            self.weights = w / w.sum()

    # --- batches -------------------------------------------------------------------------------

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(arr).to(self.device)
        return t.contiguous(memory_format=torch.channels_last) if self.cfg.run.channels_last else t

    def batch(self, size: int):
        """(background, foreground canvas, initial warp, real image), all on the device."""
        cfg, rng = self.cfg, self.rng
        p0 = perturb.warp_noise(size, cfg.perturb.homography, cfg.perturb.translation, rng)
        if cfg.data.kind in ("paired", "glasses"):  # glasses: any face with any glasses is at its true pose
            idx = rng.choice(self.shard, size, p=self.weights)
            bg, fg = self.data.batch(idx) if cfg.data.kind == "paired" else \
                self.data.batch(idx, rng.integers(len(self.data.data.fg), size=size))
            bg_t, fg_t = self._tensor(bg), self._tensor(fg)
            if cfg.data.kind == "paired" and cfg.perturb.truth_share + cfg.perturb.box_share > 0:
                p0 = self._starts(p0, fg_t)
            real_fg = fg_t
            if cfg.perturb.real_jitter > 0:
                jitter = perturb.warp_noise(size, cfg.perturb.real_jitter, 0.0, rng)
                real_fg = geometry.warp_foreground(fg_t, torch.from_numpy(jitter).float().to(self.device))
            real = geometry.composite(bg_t, real_fg)
        else:
            d = self.data
            bgs = d.bg[rng.choice(self.shard, size)]
            if cfg.perturb.background > 0:
                bgs = np.stack([perturb.perturb_background(b, cfg.perturb.background, rng) for b in bgs])
            fg = d.fg[rng.integers(len(d.fg), size=size)]
            real = d.real[rng.integers(len(d.real), size=size)]
            to_f = lambda a: a.transpose(0, 3, 1, 2).astype(np.float32) / 255
            bg_t, fg_t, real = self._tensor(to_f(bgs)), self._tensor(to_f(fg)), self._tensor(to_f(real))
        return bg_t, fg_t, torch.from_numpy(p0).float().to(self.device), real

    def _starts(self, p0: np.ndarray, fg: torch.Tensor) -> np.ndarray:
        """Mix the starting points: some samples at the truth, some from a rough box, the rest ``p0``."""
        pt = self.cfg.perturb
        u = self.rng.random(len(p0))
        box = perturb.box_noise(evaluation.object_boxes(fg[:, 3].float()).cpu().numpy(), pt.box_std, self.rng)
        out = np.where((u < pt.truth_share + pt.box_share)[:, None], box, p0)
        return np.where((u < pt.truth_share)[:, None], 0.0, out)

    # --- one step of each kind -----------------------------------------------------------------

    def _forward(self, bg, fg, p0, upto: int, train_from: int):
        """Run updates 1..upto; those before ``train_from`` (1-based) run without gradients.
        Returns the final composite, the updates of the trained iterations and the warp after each."""
        pred = self.net(bg, fg, p0, iterations=upto, train_from=train_from)
        ps = pred.params[train_from:]
        dps = [b - a for a, b in zip(pred.params[train_from - 1:], ps)]
        return geometry.composite(bg, pred.warped[-1]), dps, ps

    def _micro(self, tensors, k):
        n = self.cfg.optim.grad_accum
        return [t.chunk(n)[k] for t in tensors]

    def _d_update(self, upto: int) -> dict:
        cfg = self.cfg
        self.opt_d.zero_grad(set_to_none=True)
        stats = {"loss_d": 0.0, "wdist": 0.0, "gp": 0.0}
        batch = self.batch(cfg.optim.batch_size)
        for k in range(cfg.optim.grad_accum):
            bg, fg, p0, real = self._micro(batch, k)
            with torch.no_grad():
                fake, _, _ = self._forward(bg, fg, p0, upto, train_from=upto + 1)
            fake = self._with_history(fake)
            loss, parts = losses.critic_loss(self.net.discriminator, real, fake, cfg.optim.gp_weight)
            (loss / cfg.optim.grad_accum).backward()
            stats["loss_d"] += loss.item() / cfg.optim.grad_accum
            stats["wdist"] += parts["wdist"] / cfg.optim.grad_accum
            stats["gp"] += parts["gp"] / cfg.optim.grad_accum
        params = list(self.net.discriminator.parameters())
        self.dist.average(params)
        stats["grad_d"] = _grad_norm(params)
        self.opt_d.step()
        return stats

    def _with_history(self, fake: torch.Tensor) -> torch.Tensor:
        """Half of D's fakes come from a buffer of older ones (glasses), so D does not forget them."""
        size = self.cfg.optim.history
        if size <= 0:
            return fake
        fake = fake.detach()
        out = fake
        if self.history:
            half = fake.shape[0] // 2
            picks = self.rng.integers(len(self.history), size=half)
            old = torch.stack([self.history[i] for i in picks]).to(fake.device)
            out = torch.cat([fake[: fake.shape[0] - half], old])
        for img in fake.cpu():
            if len(self.history) < size:
                self.history.append(img.contiguous())
            else:
                self.history[int(self.rng.integers(size))] = img.contiguous()
        return out

    def _g_update(self, stage: Stage) -> dict:
        cfg = self.cfg
        if stage.name == "end_to_end":
            upto, train_from = cfg.model.warps, 1
        else:
            upto = train_from = stage.warp_index
        trained = self.net.generators.trained_by(None if stage.name == "end_to_end" else stage.warp_index)
        params = [p for g in trained for p in g.parameters()]
        self.opt_g.zero_grad(set_to_none=True)
        self.net.discriminator.requires_grad_(False)
        stats = {"loss_g": 0.0, "trust": 0.0}
        batch = self.batch(cfg.optim.batch_size)
        for k in range(cfg.optim.grad_accum):
            bg, fg, p0, _ = self._micro(batch, k)
            fake, dps, ps = self._forward(bg, fg, p0, upto, train_from)
            trust = losses.trust_region(dps)
            loss = -losses.critic(self.net.discriminator, fake).mean() + cfg.optim.trust_weight * trust
            if cfg.optim.supervised_weight > 0:  # paired data: the true placement anchors the geometry
                # Every trained iterate, not only the last: end to end, the earlier generators would
                # otherwise be free to trade their own accuracy for the final one, and a user who
                # stops early (--iterations) gets their iterate.
                boxes = evaluation.object_boxes(fg[:, 3])
                corner = sum(self._corner_loss(p, boxes) for p in ps) / len(ps)
                loss = loss + cfg.optim.supervised_weight * corner
                stats["loss_sup"] = stats.get("loss_sup", 0.0) + corner.item() / cfg.optim.grad_accum
            (loss / cfg.optim.grad_accum).backward()
            stats["loss_g"] += loss.item() / cfg.optim.grad_accum
            stats["trust"] += trust.item() / cfg.optim.grad_accum
        self.net.discriminator.requires_grad_(True)
        self.dist.average(params)
        stats["grad_g"] = _grad_norm(params)
        self.opt_g.step()
        return stats

    def _corner_loss(self, p, boxes):
        if self.cfg.optim.corner_loss == "l1":
            return losses.corner_l1(p, boxes, self.size)
        return losses.supervised_corner_loss(p, boxes)

    def _pretrain_update(self) -> dict:
        """Supervised: the first update applied ``pretrain_rounds`` times, each to its own detached
        result, with the corner loss after every application (for the refiner: its unrolled loop)."""
        cfg = self.cfg
        trained = self.net.generators.trained_by(1)
        self.opt_g.zero_grad(set_to_none=True)
        total, per_round = 0.0, [0.0] * cfg.optim.pretrain_rounds
        batch = self.batch(cfg.optim.batch_size)
        for k in range(cfg.optim.grad_accum):
            bg, fg, p, _ = self._micro(batch, k)
            boxes = evaluation.object_boxes(fg[:, 3])
            loss = 0.0
            for r in range(cfg.optim.pretrain_rounds):
                with self._autocast():
                    dp = self.net.generators.update(0, bg, fg, geometry.warp_foreground(fg, p), p)
                p = p + dp.float()
                term = self._corner_loss(p, boxes)
                per_round[r] += term.item() / cfg.optim.grad_accum
                loss = loss + term / cfg.optim.pretrain_rounds
                p = p.detach()
            (loss / cfg.optim.grad_accum).backward()
            total += loss.item() / cfg.optim.grad_accum
        params = [q for m in trained for q in m.parameters()]
        self.dist.average(params)
        grad = _grad_norm(params)
        if not math.isfinite(grad):  # one bad batch must not end the run: skip it, and say so
            self.opt_g.zero_grad(set_to_none=True)
            return {"loss_sup": total, "grad_g": grad, "skipped": 1}
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        self.opt_g.step()
        row = {"loss_sup": total, "grad_g": grad}
        if len(per_round) > 1:
            row["loss_rounds"] = [round(v, 6) for v in per_round]
        return row

    # --- the loop ------------------------------------------------------------------------------

    def stage_at(self, step: int) -> Stage:
        for s in self.stages:
            if s.start <= step < s.start + s.steps:
                return s
        return self.stages[-1]

    def _enter(self, stage: Stage) -> None:
        """Start a stage: G_i copies G_{i-1}; a fresh optimiser for what this stage trains."""
        cfg = self.cfg
        i = stage.warp_index
        if i is not None and i > 1 and self.opt_g_stage != stage.name:
            self.net.generators[i - 1].load_state_dict(self.net.generators[i - 2].state_dict())
        gens = self.net.generators
        if stage.name == "pretrain":
            self.opt_g = self._g_optimizer(gens.trained_by(1), cfg.optim.lr_pretrain)
        elif stage.name == "end_to_end":
            self.opt_g = self._g_optimizer(gens.trained_by(None), cfg.optim.lr_end_to_end or cfg.optim.lr_g)
        elif i is not None:
            self.opt_g = self._g_optimizer(gens.trained_by(i), cfg.optim.lr_g)
        else:
            self.opt_g = None
        self.opt_g_stage = stage.name

    def _set_lr(self, stage: Stage) -> float:
        o = self.cfg.optim
        decay = 1.0
        if stage.name == "pretrain" and o.schedule == "onecycle":
            k, warm = self.step - stage.start, max(1, round(o.warmup * stage.steps))
            t = k / max(stage.steps, 1)
            if k < warm:
                decay = (k + 1) / warm
            else:
                cos = 0.5 * (1 + math.cos(math.pi * (t - o.warmup) / max(1 - o.warmup, 1e-9)))
                decay = o.lr_decay_floor + (1 - o.lr_decay_floor) * cos
            self.opt_g.param_groups[0]["lr"] = o.lr_pretrain * decay
            return o.lr_pretrain * decay
        if o.lr_decay_every > 0:
            decay = o.lr_decay_factor ** ((self.step - stage.start) // o.lr_decay_every)
            decay = max(decay, o.lr_decay_floor)
        for opt, base in ((self.opt_g, self._base_lr(stage)), (self.opt_d, o.lr_d)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = base * decay
        return self._base_lr(stage) * decay

    def _base_lr(self, stage: Stage) -> float:
        o = self.cfg.optim
        if stage.name == "pretrain":
            return o.lr_pretrain
        if stage.name == "end_to_end":
            return o.lr_end_to_end or o.lr_g
        return o.lr_g

    def train_step(self) -> dict:
        stage = self.stage_at(self.step)
        if self.opt_g_stage != stage.name:
            self._enter(stage)
        lr = self._set_lr(stage)
        self.net.train()
        t0 = time.perf_counter()
        if stage.name == "pretrain":
            stats = self._pretrain_update()
        else:
            upto = 0 if stage.name == "d_pretrain" else (stage.warp_index or self.cfg.model.warps)
            stats = {}
            for _ in range(self.cfg.optim.d_steps):
                stats = self._d_update(upto)
            if stage.name != "d_pretrain":
                stats.update(self._g_update(stage))
        self.step += 1
        return {"step": self.step, "stage": stage.name, "lr": lr, "seconds": time.perf_counter() - t0, **stats}

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to the end of the schedule (or to global step ``stop_after``, checkpointed, for a
        later ``--resume``); returns the model folder when the schedule is complete."""
        cfg = self.cfg
        metrics_path = self.run_dir / "metrics.jsonl"
        end = self.total if stop_after is None else min(stop_after, self.total)
        stage_name, stage_clock, stage_from = None, time.perf_counter(), self.step
        while self.step < end:
            row = self.train_step()
            at = self.step
            if row["stage"] != stage_name:  # stages differ ~10x in cost: rate and ETA are per stage
                stage_name, stage_clock, stage_from = row["stage"], time.perf_counter() - row["seconds"], at - 1
            if self.dist.main:
                if at % cfg.run.log_every == 0 or at == self.total:
                    _append(metrics_path, row)
                    rate = (at - stage_from) / max(time.perf_counter() - stage_clock, 1e-9)
                    stage = self.stage_at(at - 1)
                    if self.progress:
                        self.progress(row, self.total, rate, stage.start + stage.steps)
                if cfg.run.eval_every and (at % cfg.run.eval_every == 0 or at == self.total) and self.eval_data:
                    _append(metrics_path, {"step": at, "stage": row["stage"], "eval": self.evaluate()})
                if cfg.run.sample_every and (at % cfg.run.sample_every == 0 or at == self.total):
                    self.write_samples()
            finished = self.stage_at(at - 1)
            if self.dist.main and at == finished.start + finished.steps and finished.name != "d_pretrain":
                self.snapshot(finished)
            periodic = cfg.run.checkpoint_every and at % cfg.run.checkpoint_every == 0
            if periodic or at == end:
                self.save_checkpoint()
        self.check_in_sync()
        if self.step < self.total:
            self.log(f"stopped at step {self.step}/{self.total}; continue with --resume {self.run_dir}")
            self.dist.close()
            return None
        if not self.dist.main:
            self.dist.close()
            return None
        report.curves(metrics_path, self.run_dir / "curves.png")
        folder = self.export_model()
        self.dist.close()
        return folder

    def check_in_sync(self) -> None:
        """Distributed runs: every rank must hold the same weights (gradients were averaged)."""
        if not self.dist.enabled:
            return
        import torch.distributed as tdist

        total = torch.tensor([sum(float(v.double().sum()) for v in self.net.state_dict().values())],
                             dtype=torch.float64)
        gathered = [torch.zeros_like(total) for _ in range(self.dist.world)]
        tdist.all_gather(gathered, total)
        values = [g.item() for g in gathered]
        if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
            raise StganError(f"ranks drifted apart: parameter sums {values}")
        if self.dist.main:
            self.log(f"{self.dist.world} ranks in sync (parameter sum {values[0]:.6f})")

    # --- evaluation, samples, checkpoints, the model ----------------------------------------------

    def _eval_batch(self, n: int):
        data = self.eval_data
        if data is self.data:  # held out from the end of the training set
            idx = np.arange(max(len(data) - n, 0), len(data))
        else:  # a small test set is cycled: each sample meets several fixed perturbations
            idx = np.resize(np.arange(len(data)), n)
        count = len(idx)
        rng = np.random.default_rng(self.eval_rng_seed)
        p0 = perturb.warp_noise(count, self.cfg.perturb.homography, self.cfg.perturb.translation, rng)
        bg, fg = data.batch(idx)
        return self._tensor(bg), self._tensor(fg), torch.from_numpy(p0).float().to(self.device)

    def trained_warps(self) -> int:
        """Generators trained so far (the stage reached)."""
        stage = self.stage_at(max(self.step - 1, 0))
        if not self.net.generators.sequential_stages:  # one shared block: every iteration is trained
            return self.cfg.model.warps
        if stage.name in ("pretrain", "d_pretrain"):
            return 1 if stage.name == "pretrain" else 0
        return stage.warp_index or self.cfg.model.warps

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out corner error, shape error (pixels at the model size) and mask IoU after each iteration."""
        self.net.eval()
        bg, fg, p0 = self._eval_batch(self.cfg.data.eval_samples)
        pred = self.net(bg, fg, p0, iterations=self.trained_warps())
        metrics = evaluation.iteration_metrics(pred, fg, self.size)
        return {k: [round(float(x), 4) for x in metrics[k].mean(1)] for k in ("corner_error", "shape_error", "iou")}

    @torch.no_grad()
    def write_samples(self) -> None:
        self.net.eval()
        if self.eval_data is not None:
            bg, fg, p0 = self._eval_batch(6)
            real = geometry.composite(bg, fg)
        else:
            bg, fg, p0, real = self.batch(6)
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
            "rng_numpy": json.dumps(self.rng.bit_generator.state),
            "history": torch.stack(self.history) if self.history else None,
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
        self.rng.bit_generator.state = json.loads(state["rng_numpy"])
        self.history = list(state["history"]) if state["history"] is not None else []
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
        default = cfg.model.default_iterations
        return dataclasses.replace(cfg.model, warps=warps, discriminator=True, provenance=provenance,
                                   default_iterations=default if default is not None and default <= warps else None)

    def export_model(self) -> Path:
        cfg = self.cfg
        final_eval = self.evaluate() if self.eval_data is not None else None
        mc = self._model_config(cfg.model.warps)
        folder = self.run_dir / "model"
        net = self.net.to("cpu").to(memory_format=torch.contiguous_format)
        modelstore.save(net, mc, folder, report.model_card(mc, cfg, final_eval, self.init_note))
        self.net.to(self.device)
        return folder


def _mixed(main: PairedDataset, folders: list, split: str | None, size, share: float):
    """``main`` and the paired datasets in ``folders`` as one, with sampling weights that give the
    others ``share`` of each batch together (each in proportion to its size)."""
    parts = [main]
    for folder in folders:
        root = Path(folder)
        parts.append(PairedDataset.load(root, size, split if split and (root / split).is_dir() else None))
    extra = sum(len(p) for p in parts[1:])
    weights = np.concatenate([np.full(len(main), (1 - share) / len(main))] +
                             [np.full(len(p), share / extra) for p in parts[1:]])
    merged = PairedDataset(main.root, [f"{p.root}/{n}" for p in parts for n in p.names],
                           np.concatenate([p.bg for p in parts]), np.concatenate([p.fg for p in parts]))
    return merged, weights


def _grad_norm(params) -> float:
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                             for k, v in row.items()}) + "\n")
