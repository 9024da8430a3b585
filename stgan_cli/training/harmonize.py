"""Training the harmonizer (``stgan train --config configs/harmonize.yaml``).

Every step draws fresh colour changes for a batch of the training split's objects at 120x160
(:func:`stgan_cli.core.colour.draw_visible_change`; a colour transfer takes another training object's
Lab statistics), so no two steps see the same composite; the recorded changes of the held-out split
are what it is measured on.  The loss is the object's mean squared error after the predicted
transform (fMSE at 120x160).  The data of step ``s`` come from a generator seeded with
``(seed, s)``, so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..core import colour
from ..data import harmonize as pairs
from ..model import harmonizer as H
from . import checkpoint

WORSE_FLOOR = 10 / 255 ** 2  # an fMSE of 10 (0-255 scale) is no change worth the name


def _batch(photos, masks, photo_of, labs, idx, rng, changes=None, scene_change: float = 0.0,
           unchanged: float = 0.0):
    """Composites, masks and truths (torch, NCHW) of rows ``idx``: with ``changes`` those recorded,
    else freshly drawn (and mirrored half the time).  With probability ``scene_change`` the whole
    photo first takes a change of its own: a truth still in harmony with itself, in colours the
    photo never had, so that recognising a training object does not tell its colours.  With
    probability ``unchanged`` the object is left as it was: an object that already belongs is to be
    left alone."""
    rgb, mask, truth = [], [], []
    for j, i in enumerate(idx):
        t = photos[photo_of[i]].astype(np.float32) / 255
        m = masks[i] > 127
        if changes is None and rng.random() < scene_change:
            t = colour.apply_change(t, np.ones(m.shape, bool), colour.draw_change(rng))
        if changes is None:
            other = int(rng.integers(len(labs)))
            _, c = colour.draw_visible_change(t, m, rng, labs[other])
            if rng.random() < unchanged:
                c = t
            if rng.random() < 0.5:
                t, m, c = t[:, ::-1], m[:, ::-1], c[:, ::-1]
        else:
            c = colour.apply_change(t, m, changes[j])
        rgb.append(c)
        mask.append(m)
        truth.append(t)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a)))
    return (as_t(rgb).permute(0, 3, 1, 2), as_t(mask).float()[:, None], as_t(truth).permute(0, 3, 1, 2))


def object_mse(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sample, the mean squared error over the object's pixels (in [0, 1] units)."""
    return (((pred - truth) ** 2) * mask).sum((1, 2, 3)) / (3 * mask.sum((1, 2, 3))).clamp_min(1)


STRENGTHS = (0.5, 0.625, 0.75, 0.875, 1.0)
GATES = (0, 25, 50, 100, 200, 300, 500, 800)
MAX_WORSE = 0.10  # the share of objects a harmonizer may make worse (issue 36)


def choose_strength(net, data, idx: np.ndarray) -> tuple[float, float, dict]:
    """(strength, gate, table) chosen on the rows ``idx`` of ``data`` (photos never trained on, with
    their recorded changes).  The strength is the share of its predicted change that is applied; the
    gate is the predicted change (fMSE on 0-255, at 120x160) below which the object is left as it is.
    Of the pairs that make at most :data:`MAX_WORSE` of these objects worse, the one with the lowest
    fMSE (with none, the one that makes the fewest worse)."""
    rows, photos, masks, photo_of = data
    net.eval()
    table = {}
    with torch.no_grad():
        rgb, mask, truth = _batch(photos, masks, photo_of, None, idx, None, [rows[i]["change"] for i in idx])
        theta = net(rgb, mask)
        before = object_mse(rgb, truth, mask) * 255 ** 2
        for s in STRENGTHS:
            out = H.apply_torch(rgb, theta * s)
            after = object_mse(out, truth, mask) * 255 ** 2
            change = object_mse(out, rgb, mask) * 255 ** 2
            for g in GATES:
                kept = torch.where(change >= g, after, before)
                table[f"{s:g}/{g}"] = (round(float(kept.mean()), 1), round(float((kept > before).float().mean()), 4))
    net.train()
    allowed = [k for k, (_, worse) in table.items() if worse <= MAX_WORSE]
    best = min(allowed, key=lambda k: table[k][0]) if allowed else min(table, key=lambda k: table[k][::-1])
    s, g = best.split("/")
    return float(s), float(g), table


def held_out(net, test, gate: float = 0.0, batch: int = 64) -> dict:
    """fMSE (0-255 scale, at 120x160) of the composites and of the harmonizer's output, on the
    held-out split with its recorded changes; objects whose predicted change is under ``gate`` are
    left as they are."""
    rows, photos, masks, photo_of = test
    before, after = [], []
    net.eval()
    with torch.no_grad():
        for s in range(0, len(rows), batch):
            idx = np.arange(s, min(s + batch, len(rows)))
            rgb, mask, truth = _batch(photos, masks, photo_of, None, idx, None, [rows[i]["change"] for i in idx])
            out = H.apply_torch(rgb, net(rgb, mask))
            b, a = object_mse(rgb, truth, mask), object_mse(out, truth, mask)
            before.append(b)
            after.append(torch.where(object_mse(out, rgb, mask) * 255 ** 2 >= gate, a, b))
    net.train()
    b, a = (torch.cat(x).numpy() * 255 ** 2 for x in (before, after))
    return {"fmse_composite": round(float(b.mean()), 2), "fmse": round(float(a.mean()), 2),
            "worse": round(float((a > b).mean()), 4)}


def train(cfg: dict, out: Path, log=print, resume: bool = False, stop_after: int | None = None) -> Path | None:
    """Train from ``cfg`` into the run folder ``out`` (``checkpoint.pt``, ``history.json``) and write
    the model folder ``out/model`` at the end; ``stop_after`` stops (checkpointed) at that step."""
    import yaml

    from ..files import atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed, optim = int(cfg.get("seed", 0)), cfg["optim"]
    steps, batch = int(optim["steps"]), int(optim["batch_size"])
    arch = {"arch": "harmonizer", "width": int(cfg.get("width", 24)), "hidden": int(cfg.get("hidden", 256)),
            "backbone": str(cfg.get("backbone", "none")), "dropout": float(cfg.get("dropout", 0.0))}
    worse_weight = float(optim.get("worse_weight", 0.0))
    scene_change, unchanged = float(cfg.get("scene_change", 0.0)), float(cfg.get("unchanged", 0.0))
    torch.manual_seed(seed)
    net = H.Harmonizer(arch["width"], arch["hidden"], arch["backbone"], pretrained=not resume, dropout=arch["dropout"])
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=float(optim["lr"]), weight_decay=float(optim["weight_decay"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, float(optim["lr"]), total_steps=steps, pct_start=0.05)
    start, history = 0, []
    if resume:
        state = checkpoint.load(out, arch)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        start, history = int(state["step"]), list(state["history"])
        log(f"resuming at step {start}")
    else:
        with atomic.replacing(out / "config.yaml") as tmp:
            Path(tmp).write_text(yaml.safe_dump(cfg, sort_keys=False))
    root = Path(cfg["data"])
    rows, photos, masks, photo_of = pairs.load_lowres(root / "train")
    labs = [tuple(np.asarray(v, np.float32) for v in r["lab"]) for r in rows]
    # every tenth training photo is kept apart, to choose the strength on
    val = photo_of % 10 == 0
    fit_rows = np.flatnonzero(~val)
    test = pairs.load_lowres(root / "test")
    log(f"{root}: {len(fit_rows)} training objects, {int(val.sum())} to choose the strength on, {len(test[0])} "
        f"held out; {steps} steps of {batch}")
    every, t0, losses = int(optim.get("eval_every", 250)), time.perf_counter(), []
    net.train()

    def make(step: int):
        rng = np.random.default_rng([seed, step])
        return _batch(photos, masks, photo_of, labs, fit_rows[rng.integers(len(fit_rows), size=batch)], rng,
                      scene_change=scene_change, unchanged=unchanged)

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)  # the next batch is drawn while this one trains
    upcoming = pool.submit(make, start)
    for step in range(start, steps):
        rgb, mask, truth = upcoming.result()
        if step + 1 < steps:
            upcoming = pool.submit(make, step + 1)
        theta = net(rgb, mask)
        # the transform is per pixel: measured on every second pixel it costs a quarter
        rgb, mask, truth = rgb[..., ::2, ::2], mask[..., ::2, ::2], truth[..., ::2, ::2]
        after = object_mse(H.apply_torch(rgb.contiguous(), theta), truth, mask)
        loss = after.mean()
        if worse_weight:  # a pair made worse counts by how much, relatively: mild changes weigh as much as strong ones
            before = object_mse(rgb, truth, mask)
            loss = loss + worse_weight * torch.relu(torch.log((after + WORSE_FLOOR) / (before + WORSE_FLOOR))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()) * 255 ** 2)
        done = step + 1
        if done % every == 0 or done == steps or done == stop_after:
            row = {"step": done, "train_fmse": round(float(np.mean(losses)), 2), **held_out(net, test),
                   "seconds": round(time.perf_counter() - t0, 1)}
            losses = []
            history.append(row)
            log(json.dumps(row))
            checkpoint.save(out, {"model": net.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                                  "step": done, "history": history, "architecture": arch})
            with atomic.replacing(out / "history.json") as tmp:
                Path(tmp).write_text(json.dumps(history, indent=1))
            if done == stop_after and done < steps:
                pool.shutdown(cancel_futures=True)
                log(f"stopped at step {done}; continue with stgan train --resume {out}")
                return None
    pool.shutdown()
    strength, gate, table = choose_strength(net, (rows, photos, masks, photo_of), np.flatnonzero(val))
    log(f"on the photos kept apart: strength {strength:g}, gate {gate:g} (fMSE {table[f'{strength:g}/{gate:g}'][0]:.0f}, "
        f"worse {100 * table[f'{strength:g}/{gate:g}'][1]:.0f} %)")
    net.strength.fill_(strength)
    history.append({"step": steps, "strength": strength, "gate": gate, "kept_apart": table,
                    **held_out(net, test, gate)})
    log(json.dumps(history[-1]))
    with atomic.replacing(out / "history.json") as tmp:
        Path(tmp).write_text(json.dumps(history, indent=1))
    config = {"width": arch["width"], "hidden": arch["hidden"], "backbone": arch["backbone"],
              "dropout": arch["dropout"], "gate": gate, "frame": list(H.FRAME), "trained_on": str(root),
              "steps": steps}
    return H.save(net.eval(), out / "model", config,
                  f"# harmonizer\n\nTrained by `stgan train --config` on {root}.\n\nHeld out: {json.dumps(history[-1])}\n")
