"""Where a training run's batches come from: the data set (paired rooms, glasses on faces, or unpaired
images), this process's shard of it, optional mixing with other folders, and the starting warps.

Every draw uses ``Batches.rng``, which the checkpoint keeps, so a resumed run draws what the
uninterrupted one would have drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import evaluation, geometry
from ..data import perturb
from ..data.datasets import PairedDataset, UnpairedDataset, has_filled_holes, open_eval_set
from ..errors import StganError
from . import decoys


class Batches:
    def __init__(self, cfg, size: tuple[int, int], device: str, rank: int = 0, world: int = 1):
        self.cfg, self.size, self.device = cfg, size, device
        self.rng = np.random.default_rng([cfg.run.seed, rank])
        self.eval_seed = cfg.run.seed + 12345
        if not cfg.data.path:
            raise StganError("no training data: pass --data DIR (or data.path in the config)")
        root = Path(cfg.data.path)
        has_splits = (root / "train").is_dir()
        split = cfg.data.split if has_splits else None
        kind = cfg.data.kind
        if kind in ("paired", "glasses"):
            load = lambda s: open_eval_set(root, size, s, glasses=kind == "glasses")  # noqa: E731
        else:
            load = lambda s: UnpairedDataset.load(root, size, s)  # noqa: E731
        self.data = load(split)
        self.eval_data = None
        if kind in ("paired", "glasses"):
            held_out = has_splits and cfg.data.eval_split and (root / cfg.data.eval_split).is_dir()
            self.eval_data = load(cfg.data.eval_split) if held_out else self.data
        self.weights = None
        # which samples show their object's true place as a filled hole (pairs cut from photos)
        self.holes = np.full(len(self.data), kind == "paired" and has_filled_holes(self.data.root)) \
            if kind == "paired" else None
        if cfg.data.mix:
            self.data, self.weights, self.holes = _mixed(self.data, cfg.data.mix, cfg.data.split, size,
                                                         cfg.data.mix_share, self.holes)
        total = len(self.data) if kind != "unpaired" else len(self.data.bg)
        self.shard = np.arange(total)[rank::world]
        if len(self.shard) == 0:
            raise StganError(f"{root}: {total} samples cannot be shared by {world} processes")
        if self.weights is not None:
            w = self.weights[self.shard]
            self.weights = w / w.sum()

    def tensor(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(arr).to(self.device)
        return t.contiguous(memory_format=torch.channels_last) if self.cfg.run.channels_last else t

    def train(self, size: int):
        """(background, foreground canvas, initial warp, real image), all on the device."""
        cfg, rng = self.cfg, self.rng
        p0 = perturb.warp_noise(size, cfg.perturb.homography, cfg.perturb.translation, rng)
        if cfg.data.kind in ("paired", "glasses"):  # glasses: any face with any glasses is at its true pose
            idx = rng.choice(self.shard, size, p=self.weights)
            bg, fg = self.data.batch(idx) if cfg.data.kind == "paired" else \
                self.data.batch(idx, rng.integers(len(self.data.data.fg), size=size))
            bg_t, fg_t = self.tensor(bg), self.tensor(fg)
            if cfg.data.kind == "paired" and cfg.perturb.flip > 0:
                bg_t, fg_t = _flip(bg_t, fg_t, rng.random(size) < cfg.perturb.flip)
            if cfg.perturb.truth_share + cfg.perturb.box_share > 0:
                p0 = self._starts(p0, fg_t)
            if cfg.data.kind == "paired" and cfg.perturb.decoy_share > 0:
                on = self.holes[idx] & (rng.random(size) < cfg.perturb.decoy_share)
                bg_t = decoys.mirror_decoys(bg_t, fg_t, torch.from_numpy(p0).float().to(self.device),
                                            torch.from_numpy(on).to(self.device))
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
            to_f = lambda a: a.transpose(0, 3, 1, 2).astype(np.float32) / 255  # noqa: E731
            bg_t, fg_t, real = self.tensor(to_f(bgs)), self.tensor(to_f(fg)), self.tensor(to_f(real))
        return bg_t, fg_t, torch.from_numpy(p0).float().to(self.device), real

    def _starts(self, p0: np.ndarray, fg: torch.Tensor) -> np.ndarray:
        """Mix the starting points: some samples at the truth, some from a rough box, the rest ``p0``."""
        pt = self.cfg.perturb
        u = self.rng.random(len(p0))
        box = perturb.box_noise(evaluation.object_boxes(fg[:, 3].float()).cpu().numpy(), pt.box_std, self.rng)
        out = np.where((u < pt.truth_share + pt.box_share)[:, None], box, p0)
        return np.where((u < pt.truth_share)[:, None], 0.0, out)

    def held_out(self, n: int):
        """The same ``n`` (background, canvas, perturbation) every time: the run's evaluation set."""
        data = self.eval_data
        if data is self.data:  # held out from the end of the training set
            idx = np.arange(max(len(data) - n, 0), len(data))
        else:  # a small test set is cycled: each sample meets several fixed perturbations
            idx = np.resize(np.arange(len(data)), n)
        rng = np.random.default_rng(self.eval_seed)
        p0 = perturb.warp_noise(len(idx), self.cfg.perturb.homography, self.cfg.perturb.translation, rng)
        bg, fg = data.batch(idx)
        return self.tensor(bg), self.tensor(fg), torch.from_numpy(p0).float().to(self.device)


def _flip(bg: torch.Tensor, fg: torch.Tensor, which: np.ndarray):
    """The samples ``which`` (B,) of ``bg`` and ``fg`` mirrored left to right, together."""
    on = torch.from_numpy(which).to(bg.device)[:, None, None, None]
    return torch.where(on, bg.flip(-1), bg), torch.where(on, fg.flip(-1), fg)


def _mixed(main: PairedDataset, folders: list, split: str | None, size, share: float, holes: np.ndarray):
    """``main`` and the paired datasets in ``folders`` as one, with sampling weights that give the
    others ``share`` of each batch together (each in proportion to its size), and which samples show a
    filled hole (``holes``: ``main``'s)."""
    parts = [main]
    for folder in folders:
        root = Path(folder)
        parts.append(PairedDataset.load(root, size, split if split and (root / split).is_dir() else None))
        holes = np.concatenate([holes, np.full(len(parts[-1]), has_filled_holes(parts[-1].root))])
    extra = sum(len(p) for p in parts[1:])
    weights = np.concatenate([np.full(len(main), (1 - share) / len(main))] +
                             [np.full(len(p), share / extra) for p in parts[1:]])
    merged = PairedDataset(main.root, [f"{p.root}/{n}" for p in parts for n in p.names],
                           np.concatenate([p.bg for p in parts]), np.concatenate([p.fg for p in parts]))
    return merged, weights, holes
