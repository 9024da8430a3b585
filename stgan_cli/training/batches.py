"""Where a training run's batches come from: the data set (paired rooms, glasses on faces, or unpaired
images), this process's shard of it, optional mixing with other folders, and the starting warps.

Every draw uses ``Batches.rng``, which the checkpoint keeps, so a resumed run draws what the
uninterrupted one would have drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import frames, geometry
from ..files import imageio
from ..core import perturb
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
        parts = [self.data]
        # which samples show their object's true place as a filled hole (pairs cut from photos)
        self.holes = np.full(len(self.data), kind == "paired" and has_filled_holes(self.data.root)) \
            if kind == "paired" else None
        if cfg.data.mix:
            self.data, self.weights, self.holes, parts = _mixed(self.data, cfg.data.mix, cfg.data.split, size,
                                                                cfg.data.mix_share, self.holes)
        self.detail = Detail(parts, cfg.model.detail_size) if cfg.model.detail and kind == "paired" else None
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
        """(background, foreground canvas, initial warp, real image), all on the device; then, for a
        model that reads its window at a higher resolution (``model.detail``), the background and
        canvas at that resolution, mirrored and decoyed as the others."""
        cfg, rng = self.cfg, self.rng
        p0 = perturb.warp_noise(size, cfg.perturb.homography, cfg.perturb.translation, rng)
        if cfg.data.kind in ("paired", "glasses"):  # glasses: any face with any glasses is at its true pose
            idx = rng.choice(self.shard, size, p=self.weights)
            bg, fg = self.data.batch(idx) if cfg.data.kind == "paired" else \
                self.data.batch(idx, rng.integers(len(self.data.data.fg), size=size))
            bg_t, fg_t = self.tensor(bg), self.tensor(fg)
            detail = self.detail.batch(idx, bg_t, fg_t) if self.detail is not None else None
            if cfg.data.kind == "paired" and cfg.perturb.flip > 0:
                flip = rng.random(size) < cfg.perturb.flip
                bg_t, fg_t = _flip(bg_t, fg_t, flip)
                detail = _flip(*detail, flip) if detail is not None else None
            if cfg.perturb.truth_share + cfg.perturb.box_share > 0:
                p0 = self._starts(p0, fg_t)
            if cfg.data.kind == "paired" and cfg.perturb.decoy_share > 0:
                on = torch.from_numpy(self.holes[idx] & (rng.random(size) < cfg.perturb.decoy_share)).to(self.device)
                if bool(on.any()):
                    hole = decoys.mirror_holes(fg_t, torch.from_numpy(p0).float().to(self.device), on)
                    bg_t = decoys.push_pull_fill(bg_t, hole)
                    if detail is not None:
                        detail = (decoys.carry_up(detail[0], bg_t, hole), detail[1])
            real_fg = fg_t
            if cfg.perturb.real_jitter > 0:
                jitter = perturb.warp_noise(size, cfg.perturb.real_jitter, 0.0, rng)
                real_fg = geometry.warp_foreground(fg_t, torch.from_numpy(jitter).float().to(self.device))
            real = geometry.composite(bg_t, real_fg)
            if detail is not None:
                return bg_t, fg_t, torch.from_numpy(p0).float().to(self.device), real, *detail
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
        box = perturb.box_noise(frames.object_boxes(fg[:, 3].float()).cpu().numpy(), pt.box_std, self.rng)
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
    """The samples ``which`` (B,) of ``bg`` and ``fg`` mirrored left to right, together (in place:
    the batch's own tensors)."""
    rows = torch.from_numpy(np.flatnonzero(which)).to(bg.device)
    bg[rows], fg[rows] = bg[rows].flip(-1), fg[rows].flip(-1)
    return bg, fg


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
    return merged, weights, holes, parts


class Detail:
    """The training pairs at ``size`` (``model.detail`` times the frame), for the window read at that
    resolution.  A part whose photos are at least that large (pairs cut from photos) is loaded at
    it; a smaller one (generated rooms, made at the frame's size) is upsampled per batch, which is
    what reading the frame itself would give."""

    def __init__(self, parts: list[PairedDataset], size: tuple[int, int]):
        self.size = tuple(size)
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.parts = []
        for part in parts:
            first = next(iter(sorted((part.root / "backgrounds").glob("*"))), None)
            big = first is not None and min(np.array(imageio.read_image(first).size) / self.size) >= 1
            self.parts.append(PairedDataset.load(part.root, self.size) if big else None)

    def batch(self, idx: np.ndarray, bg: torch.Tensor, fg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, h, w) backgrounds and (B, 4, h, w) canvases at ``size`` for the global indices ``idx``,
        whose frame-sized tensors are ``bg`` and ``fg``."""
        up = lambda t: F.interpolate(t, size=self.size, mode="bilinear", align_corners=False)  # noqa: E731
        bg_d = bg.new_empty((len(idx), bg.shape[1], *self.size))
        fg_d = fg.new_empty((len(idx), fg.shape[1], *self.size))
        which = np.searchsorted(self.starts, idx, side="right") - 1
        for k, part in enumerate(self.parts):
            rows = np.flatnonzero(which == k)
            if len(rows) == 0:
                continue
            at = torch.from_numpy(rows).to(bg.device)
            if part is None:
                bg_d[at], fg_d[at] = up(bg[at]), up(fg[at])
            else:
                b, f = part.batch(idx[rows] - self.starts[k])
                bg_d[at], fg_d[at] = torch.from_numpy(b).to(bg_d), torch.from_numpy(f).to(fg_d)
        return bg_d, fg_d
