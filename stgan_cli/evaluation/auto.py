"""``stgan eval --protocol auto``: how well the placement critic finds where an object belongs, on
held-out real pairs, as libcom's placement benchmarks report it.

For every pair, the critic scores the candidate grid that ``composite --place auto`` scores (the
object's own aspect, every scale and position), on the photo whose object was cut out, exactly as
``composite`` reads a photo.  Measured:

- the true box's rank among the candidates, in % (0: above all of them; chance: 50).  Two ways:
  *grid*, on the photo as it is (the filled hole sits under the true box); *decoys*, against boxes
  drawn from the same grid with a hole of the object's shape filled under each, so that a hole is
  no cue (the figure the critic was selected by in training);
- the chosen (best) box's centre error (% of the photo's diagonal) and IoU with the true box;
- the same two for the model's fixed default spot and for a random candidate (the mean over all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import boxes as B


def placed_box(case, bg_from_fg: np.ndarray) -> np.ndarray:
    """The normalised box of the case's cut-out placed by ``bg_from_fg`` (a scale and a shift)."""
    from ..core.frames import apply_homography

    x1, y1, x2, y2 = case.cutout.object_box()
    (a, b), (c, d) = apply_homography(bg_from_fg, [[x1, y1], [x2, y2]]) + 0.5
    return B.from_pixels((a, b, c, d), case.bg.shape[:2])


def starts(case, box: np.ndarray, center, width: float) -> dict:
    """``bg_from_fg`` of the cut-out in the critic's ``box`` and at the model's fixed spot, as
    ``composite`` places them."""
    from ..composite import compositing

    return {"critic": compositing.place_in_box(case.cutout, B.to_pixels(box, case.bg.shape[:2])),
            "fixed": compositing.place_scaled(case.cutout, case.bg.shape[:2], center, width)}


def evaluate(folder: Path, cases: list, data: Path, center, width: float, seed: int = 0, on_case=None) -> dict:
    """The figures above for the ``cases`` of the ``from-photos`` split ``data``, with the critic of
    ``folder`` (as composite opens it for the grid; its weights for the decoys' holes); ``starts``
    holds, per start (critic, fixed), each case's ``bg_from_fg``, for the generators to correct."""
    from . import photos as photo_eval
    from ..composite import auto
    from ..model import critic as C

    critic = auto.open_critic(str(folder))
    rows, placed = [], {"critic": [], "fixed": []}
    for case in cases:
        truth = placed_box(case, np.eye(3))
        size = case.bg.shape[:2]
        found = auto.search(critic, case.bg, case.cutout.rgba)
        boxes = np.concatenate([truth[None], found.boxes]).astype(np.float32)
        s = critic.score(auto.photo_input(case.bg), auto.object_input(case.cutout.rgba), boxes)
        for k, m in starts(case, found.boxes[0], center, width).items():
            placed[k].append(m)
        fixed = placed_box(case, placed["fixed"][-1])
        rows.append({"name": case.name, "source": case.source, "rank": 100 * float(np.mean(s[1:] > s[0])),
                     "chosen_error": float(B.centre_error(found.boxes[0], truth, size)),
                     "chosen_iou": float(B.iou(found.boxes[0], truth)),
                     "fixed_error": float(B.centre_error(fixed, truth, size)), "fixed_iou": float(B.iou(fixed, truth)),
                     "random_error": float(B.centre_error(found.boxes, truth, size).mean()),
                     "random_iou": float(B.iou(found.boxes, truth).mean()), "candidates": len(found.boxes)})
        if on_case:
            on_case()
    by_group = [{"group": kind, "label": label, **summarise([rows[i] for i in idx])}
                for kind, label, idx in photo_eval.groups(cases)]
    return {"pairs": rows, "summary": summarise(rows), "by_group": by_group,
            "decoys": decoy_ranks(C.load(folder), data, seed), "starts": placed}


def summarise(rows: list[dict]) -> dict:
    col = lambda k: np.array([r[k] for r in rows])  # noqa: E731
    out = {"pairs": len(rows), "candidates_mean": float(col("candidates").mean()),
           "rank_grid_mean": float(col("rank").mean()), "rank_grid_median": float(np.median(col("rank")))}
    for who in ("chosen", "fixed", "random"):
        out[f"{who}_error_mean"] = float(col(f"{who}_error").mean())
        out[f"{who}_error_median"] = float(np.median(col(f"{who}_error")))
        out[f"{who}_iou_mean"] = float(col(f"{who}_iou").mean())
    return out


def decoy_ranks(critic, data: Path, seed: int, versions: int = 4) -> dict:
    """The truth's rank among decoys drawn from the candidate grid, each over a filled hole."""
    from ..data.datasets import PairedDataset
    from ..model import critic as C
    from ..training import critic as T

    root = Path(data)
    split = None if (root / "backgrounds").is_dir() else "test"
    pairs = PairedDataset.load(root, size=C.FRAME, split=split)
    big = PairedDataset.load(root, size=(240, 320), split=split).fg
    crops = np.stack([C.object_crop(f.astype(np.float32) / 255, premultiplied=True) for f in big])
    v = T.build_versions(critic, pairs.bg, pairs.fg, crops, versions, True, np.random.default_rng(seed),
                         grid_decoys=True, log=lambda *_: None)
    return T.measure(critic, v)


def markdown(result: dict) -> str:
    s, d = result["summary"], result["decoys"]
    lines = [f"{s['pairs']} held-out pairs, {s['candidates_mean']:.0f} candidates each on average.", "",
             "| true box's rank among the candidates (% above it; chance 50) | mean | median |", "|---|---|---|",
             f"| grid (the photo as it is) | {s['rank_grid_mean']:.1f} | {s['rank_grid_median']:.1f} |",
             f"| decoys (a filled hole under every box) | {d['rank_percentile_mean']:.1f} | "
             f"{d['rank_percentile_median']:.1f} |", "",
             "| start | centre error, % of diagonal (mean / median) | IoU with the true box (mean) |", "|---|---|---|"]
    for who, label in (("chosen", "the critic's best box"), ("fixed", "the model's fixed spot"),
                       ("random", "a random candidate")):
        lines.append(f"| {label} | {s[who + '_error_mean']:.1f} / {s[who + '_error_median']:.1f} | "
                     f"{s[who + '_iou_mean']:.3f} |")
    lines += ["", "| pairs by | | n | rank (grid), mean | centre error: best box / fixed spot / random | IoU: best / fixed / random |",
              "|---|---|---|---|---|---|"]
    for g in result["by_group"]:
        lines.append(f"| {g['group']} | {g['label']} | {g['pairs']} | {g['rank_grid_mean']:.1f} | "
                     f"{g['chosen_error_mean']:.1f} / {g['fixed_error_mean']:.1f} / {g['random_error_mean']:.1f} | "
                     f"{g['chosen_iou_mean']:.3f} / {g['fixed_iou_mean']:.3f} / {g['random_iou_mean']:.3f} |")
    lines.append("")
    lines.append(f"OPA-style balanced accuracy (score > 0 is plausible; truth vs decoys): {d['balanced_accuracy']:.1f} %")
    return "\n".join(lines)
