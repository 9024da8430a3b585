"""Training the placement critic (:mod:`stgan_cli.model.critic`) on paired folders.

Each pair (a photo with its object's true box) gives a few *versions*: the photo, or its mirror
image, with decoy holes at wrong boxes for the object (far, other scales, near misses), each the
object's own shape moved there, grown a pixel and filled by push-pull as the real hole was.  The
backbone reads every version once (frozen: its features are computed before training starts);
the head learns to rank the truth first among the decoys (a softmax over each version's boxes)
and to call it plausible and the decoys not (a balanced logistic loss, for OPA-style accuracy).
Folders of generated rooms (``holes: false``) have no hole at the truth, so their decoys get none.

Held out: the folder's ``test`` split, with decoys drawn from the candidate grid that
``--place auto`` scores, so "the truth beats a decoy" estimates the truth's rank among the grid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import frames
from ..core import boxes as B
from ..model import critic as C
from .decoys import push_pull_fill

MAX_DECOYS = 6


@dataclass
class Versions:
    """Features of every version of every pair, and each version's boxes (truth first)."""

    f8: torch.Tensor  # (V, 40, 15, 20) float16
    f16: torch.Tensor  # (V, 112, 8, 10) float16
    thing: torch.Tensor  # (V, 224) the object's features (mirrored with the photo)
    boxes: torch.Tensor  # (V, 1 + MAX_DECOYS, 4)
    valid: torch.Tensor  # (V, 1 + MAX_DECOYS) bool
    pair: torch.Tensor  # (V,) which pair

    def __len__(self) -> int:
        return len(self.pair)


def decoy_count(box: np.ndarray) -> int:
    """Fewer decoys for larger objects: their holes would bury the scene."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    return int(np.clip(round(0.3 / max(area, 1e-3)), 2, MAX_DECOYS))


def sample_decoys(truth: np.ndarray, n: int, rng: np.random.Generator, grid: np.ndarray | None = None,
                  mixture: bool = False) -> np.ndarray:
    """``n`` wrong boxes for an object whose true box is ``truth``: from ``grid`` (the candidates
    ``--place auto`` scores) when given; with ``mixture``, a training mixture instead: 40 % from the
    grid (its edges and its smallest and largest scales included, which composite scores too), 20 % the
    truth's centre at another scale, 20 % the truth's scale elsewhere, 20 % near misses.  None overlaps
    the truth by more than half (IoU)."""
    w, h = truth[2] - truth[0], truth[3] - truth[1]
    if grid is None:
        grid = B.candidate_boxes(w / h)[0]
    out = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        kind = rng.random() if mixture else 0.0
        cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
        if kind < 0.4:
            box = grid[rng.integers(len(grid))]
        else:
            if kind < 0.6:
                s = float(np.exp(rng.choice([-1, 1]) * rng.uniform(np.log(1.6), np.log(3.5))))
                bw, bh = w * s, h * s
            elif kind < 0.8:
                bw, bh = w, h
            else:
                s = float(np.exp(rng.normal(0, 0.3)))
                bw, bh = w * s, h * s
                cx, cy = cx + rng.normal(0, 0.3) * w, cy + rng.normal(0, 0.3) * h
            if bw > 1 or bh > 1:
                continue
            if 0.6 <= kind < 0.8:
                cx, cy = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
            cx, cy = float(np.clip(cx, bw / 2, 1 - bw / 2)), float(np.clip(cy, bh / 2, 1 - bh / 2))
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        if box[0] < -1e-6 or box[1] < -1e-6 or box[2] > 1 + 1e-6 or box[3] > 1 + 1e-6:
            continue
        if B.iou(box, truth) > 0.5:
            continue
        out.append(box)
    return np.array(out, float).reshape(-1, 4)


def moved_alpha(alpha: torch.Tensor, src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    """``alpha`` (1, 1, H, W) of an object in box ``src`` moved and scaled into each box of ``dst``
    (D, 4): (D, 1, H, W)."""
    s, d = torch.as_tensor(src, dtype=alpha.dtype), torch.as_tensor(dst, dtype=alpha.dtype)
    ax = (s[2] - s[0]) / (d[:, 2] - d[:, 0])
    ay = (s[3] - s[1]) / (d[:, 3] - d[:, 1])
    tx = (s[0] + s[2] - 1) - ax * (d[:, 0] + d[:, 2] - 1)  # centres in [-1, 1] units
    ty = (s[1] + s[3] - 1) - ay * (d[:, 1] + d[:, 3] - 1)
    zero = torch.zeros_like(ax)
    theta = torch.stack([torch.stack([ax, zero, tx], 1), torch.stack([zero, ay, ty], 1)], 1)
    grid = F.affine_grid(theta, (len(d), 1, *alpha.shape[-2:]), align_corners=False)
    return F.grid_sample(alpha.expand(len(d), -1, -1, -1), grid, align_corners=False)


# ``stgan data from-photos`` grows a hole by this share of the object's box diagonal (photos.make_pair)
HOLE_GROWTH = 0.03


def with_decoy_holes(bg: torch.Tensor, alpha: torch.Tensor, truth: np.ndarray, decoys: np.ndarray) -> torch.Tensor:
    """``bg`` (1, 3, H, W) with a hole at every decoy box: the object's shape moved there, grown as
    the real hole was (3 % of the box's diagonal, a round kernel), filled by push-pull.  A decoy
    hole grown less than the real one would tell the critic which hole is the truth's."""
    if len(decoys) == 0:
        return bg
    h, w = bg.shape[-2:]
    moved = (moved_alpha(alpha, truth, decoys) > 1e-3).float()
    holes = []
    for d, m in zip(decoys, moved):
        r = max(1, int(round(HOLE_GROWTH * np.hypot((d[2] - d[0]) * w, (d[3] - d[1]) * h))))
        yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        disk = ((yy ** 2 + xx ** 2) <= r * r + 0.5).float()[None, None]
        holes.append(F.conv2d(m[None], disk, padding=r) > 0.5)
    return push_pull_fill(bg, torch.cat(holes).any(0, keepdim=True))


def truth_boxes(fg: np.ndarray) -> np.ndarray:
    """Normalised boxes (N, 4) of the objects of premultiplied ``fg`` (N, H, W, 4) uint8."""
    alpha = torch.from_numpy(fg[..., 3]).float() / 255
    return ((frames.object_boxes(alpha).numpy() + 1) / 2).astype(float)


def build_versions(critic: C.PlacementCritic, bg: np.ndarray, fg: np.ndarray, objects: np.ndarray,
                   versions: int, holes: bool, rng: np.random.Generator, grid_decoys: bool = False,
                   log=print) -> Versions:
    """Every pair ``versions`` times (odd ones mirrored), with decoys, through the backbone.

    ``bg`` (N, 120, 160, 3) and ``fg`` (N, 120, 160, 4) uint8 as :class:`PairedDataset` holds them,
    ``objects`` (N, 64, 64, 3) float32 the object crops.  ``grid_decoys``: decoys from the candidate
    grid (the held-out measure), else the training mixture."""
    n = len(bg)
    truths = truth_boxes(fg)
    thing = {}
    for flip in (False, True):
        crops = torch.from_numpy(np.ascontiguousarray(objects[:, :, ::-1] if flip else objects)).permute(0, 3, 1, 2)
        thing[flip] = torch.cat([critic.object_features(crops[i:i + 64]) for i in range(0, n, 64)])
    f8s, f16s, things, all_boxes, valids, pairs = [], [], [], [], [], []
    batch, start = [], time.time()

    def flush():
        x = torch.cat(batch)
        f8, f16 = critic.photo_features(x)
        f8s.append(f8.half())
        f16s.append(f16.half())
        batch.clear()

    for i in range(n):
        grid = B.candidate_boxes((truths[i, 2] - truths[i, 0]) / max(truths[i, 3] - truths[i, 1], 1e-6))[0]
        for v in range(versions):
            flip = v % 2 == 1
            img = torch.from_numpy(bg[i]).permute(2, 0, 1)[None].float() / 255
            alpha = torch.from_numpy(fg[i, ..., 3]).float()[None, None] / 255
            truth = truths[i].copy()
            if flip:
                img, alpha = img.flip(-1), alpha.flip(-1)
                truth[[0, 2]] = 1 - truth[[2, 0]]
            # the grid is its own mirror image (same boxes, same order): one per pair serves both
            decoys = sample_decoys(truth, decoy_count(truth), rng, grid, mixture=not grid_decoys)
            if holes:
                img = with_decoy_holes(img, alpha, truth, decoys)
            boxes = np.zeros((1 + MAX_DECOYS, 4))
            boxes[0], boxes[1:1 + len(decoys)] = truth, decoys
            valid = np.zeros(1 + MAX_DECOYS, bool)
            valid[:1 + len(decoys)] = True
            batch.append(img)
            things.append(thing[flip][i])
            all_boxes.append(boxes)
            valids.append(valid)
            pairs.append(i)
            if len(batch) == 32:
                flush()
        if (i + 1) % 200 == 0:
            log(f"features: {i + 1}/{n} pairs, {time.time() - start:.0f} s")
    if batch:
        flush()
    return Versions(torch.cat(f8s), torch.cat(f16s), torch.stack(things), torch.tensor(np.array(all_boxes)).float(),
                    torch.tensor(np.array(valids)), torch.tensor(pairs))


def scores(critic: C.PlacementCritic, data: Versions, rows: torch.Tensor) -> torch.Tensor:
    """(len(rows), 1 + MAX_DECOYS) scores, -inf where a version has no box."""
    k = data.boxes.shape[1]
    index = torch.arange(len(rows)).repeat_interleave(k)
    s = critic(data.f8[rows].float(), data.f16[rows].float(), data.thing[rows], data.boxes[rows].reshape(-1, 4), index)
    return s.view(len(rows), k).masked_fill(~data.valid[rows], float("-inf"))


def loss(s: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax ranking (the truth, column 0, first) plus a balanced logistic loss."""
    rank = F.cross_entropy(s, torch.zeros(len(s), dtype=torch.long))
    finite = torch.where(valid, s, torch.zeros_like(s))
    pos = F.softplus(-finite[:, 0]).mean()
    neg = (F.softplus(finite[:, 1:]) * valid[:, 1:]).sum() / valid[:, 1:].sum().clamp_min(1)
    return rank + 0.5 * (pos + neg)


@torch.no_grad()
def measure(critic: C.PlacementCritic, data: Versions) -> dict:
    """Held-out figures: how often the truth beats a decoy (pairwise, = 100 - its rank percentile
    among the decoys' distribution), and OPA-style balanced accuracy of score > 0."""
    critic.eval()
    s = torch.cat([scores(critic, data, torch.arange(i, min(i + 256, len(data)))) for i in range(0, len(data), 256)])
    valid = data.valid
    beats = ((s[:, :1] > s[:, 1:]) & valid[:, 1:]).sum().item() / valid[:, 1:].sum().item()
    tpr = (s[:, 0] > 0).float().mean().item()
    tnr = ((s[:, 1:] <= 0) & valid[:, 1:]).sum().item() / valid[:, 1:].sum().item()
    # the truth's rank percentile per pair (over its versions' decoys), then the median over pairs
    per_pair = {}
    for row in range(len(s)):
        d = s[row, 1:][valid[row, 1:]]
        per_pair.setdefault(int(data.pair[row]), []).extend((d > s[row, 0]).float().tolist())
    pct = np.array([100 * np.mean(v) for v in per_pair.values()])
    return {"truth_beats_decoy": 100 * beats, "rank_percentile_mean": float(pct.mean()),
            "rank_percentile_median": float(np.median(pct)), "balanced_accuracy": 50 * (tpr + tnr), "pairs": len(pct)}


def fit(critic: C.PlacementCritic, train: Versions, test: Versions | None, steps: int, batch_size: int, lr: float,
        weight_decay: float, seed: int, log=print, eval_every: int = 500) -> list[dict]:
    torch.manual_seed(seed)
    params = [p for p in critic.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history, start = [], time.time()
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        critic.train()
        rows = torch.randint(len(train), (batch_size,), generator=gen)
        value = loss(scores(critic, train, rows), train.valid[rows])
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            row = {"step": step, "loss": round(value.item(), 4), "seconds": round(time.time() - start, 1)}
            if test is not None:
                row.update({k: round(v, 2) for k, v in measure(critic, test).items()})
            history.append(row)
            log("critic " + "  ".join(f"{k} {v}" for k, v in row.items()))
    return history


def object_crops(root: Path, split: str) -> np.ndarray:
    """(N, 64, 64, 3): each pair's object as the critic sees it, from the objects at 240x320."""
    from ..data.datasets import PairedDataset

    fg = PairedDataset.load(root, size=(240, 320), split=split).fg
    return np.stack([C.object_crop(f.astype(np.float32) / 255, premultiplied=True) for f in fg])


def concat(parts: list[Versions]) -> Versions:
    offset, pairs = 0, []
    for p in parts:
        pairs.append(p.pair + offset)
        offset += int(p.pair.max()) + 1 if len(p) else 0
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    return Versions(cat("f8"), cat("f16"), cat("thing"), cat("boxes"), cat("valid"), torch.cat(pairs))


def train(cfg: dict, out: Path, log=print) -> Path:
    """Train a critic from ``cfg`` (``configs/placement.yaml``) into the model folder ``out/model``;
    ``out/history.json`` holds the held-out figures along the way."""
    import json

    from ..data.datasets import PairedDataset

    torch.set_grad_enabled(True)
    seed = int(cfg.get("seed", 0))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    data, optim = cfg["data"], cfg["optim"]
    critic = C.PlacementCritic(pretrained=True)
    train_parts, test_parts = [], []
    for n, entry in enumerate(data["sets"]):
        root, holes = Path(entry["path"]), bool(entry.get("holes", True))
        splits = [("train", entry.get("versions", data["versions"]), train_parts, False)]
        if n == 0:  # the held-out figures: the first set's test split
            splits.append(("test", data["test_versions"], test_parts, True))
        for split, versions, parts, grid in splits:
            pairs = PairedDataset.load(root, size=C.FRAME, split=split)
            keep = slice(0, int(entry["limit"]) if "limit" in entry and split == "train" else None)
            log(f"{root}/{split}: {len(pairs.bg[keep])} pairs x {versions} versions")
            parts.append(build_versions(critic, pairs.bg[keep], pairs.fg[keep], object_crops(root, split)[keep],
                                        versions, holes, rng, grid_decoys=grid, log=log))
    train_set, test_set = concat(train_parts), test_parts[0]
    history = fit(critic, train_set, test_set, int(optim["steps"]), int(optim["batch_size"]), float(optim["lr"]),
                  float(optim["weight_decay"]), seed, log=log, eval_every=int(optim.get("eval_every", 500)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    card = (f"# placement critic\n\nTrained by `stgan train --config` on {', '.join(e['path'] for e in data['sets'])}."
            f"\n\nHeld-out ({data['sets'][0]['path']}/test): {json.dumps(history[-1])}\n")
    config = {k: v for k, v in cfg.items() if k != "kind"}
    return C.save(critic, out / "model", config, card)
