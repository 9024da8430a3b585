"""What a training run shows a person: sample grids, loss and error curves, the model card."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..files import imageio

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]


def sample_grid(columns, path: Path, labels: list[str]) -> None:
    """Rows of samples, columns ``real | initial | after G_1 | ...``, with a label above each column."""
    imgs = [c.detach().float().clamp(0, 1).cpu().permute(0, 2, 3, 1).numpy() for c in columns]
    n, h, w = imgs[0].shape[:3]
    gap, top = 2, 14
    grid = np.full((top + n * (h + gap), len(imgs) * (w + gap), 3), 255, np.uint8)
    for j, col in enumerate(imgs):
        x = j * (w + gap)
        cv2.putText(grid, labels[j], (x + 3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(n):
            y = top + i * (h + gap)
            grid[y:y + h, x:x + w] = np.round(col[i] * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.write_image(path, grid)


def _plot(panel: np.ndarray, series: dict, title: str, log_y: bool = False) -> None:
    h, w = panel.shape[:2]
    left, right, top, bottom = 52, 10, 22, 24
    cv2.putText(panel, title, (left, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    pts = [(np.asarray(x, float), np.asarray(y, float)) for x, y in series.values() if len(x)]
    if not pts:
        return
    xs = np.concatenate([p[0] for p in pts])
    ys = np.concatenate([p[1] for p in pts])
    if log_y:
        ys = np.log10(np.maximum(ys, 1e-6))
    x0, x1 = xs.min(), max(xs.max(), xs.min() + 1)
    y0, y1 = np.percentile(ys, 1), np.percentile(ys, 99)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    to_px = lambda x, y: (int(left + (x - x0) / (x1 - x0) * (w - left - right)),
                          int(h - bottom - (np.clip(y, y0, y1) - y0) / (y1 - y0) * (h - top - bottom)))
    cv2.rectangle(panel, (left, top), (w - right, h - bottom), (180, 180, 180), 1)
    for frac in (0, 0.5, 1):
        yv = y0 + frac * (y1 - y0)
        label = f"{10 ** yv:.3g}" if log_y else f"{yv:.5g}"
        cv2.putText(panel, label, (2, to_px(x0, yv)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (60, 60, 60), 1)
    cv2.putText(panel, f"step {int(x1)}", (w - right - 70, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (60, 60, 60), 1)
    for k, (name, (x, y)) in enumerate(series.items()):
        if not len(x):
            continue
        y = np.log10(np.maximum(np.asarray(y, float), 1e-6)) if log_y else np.asarray(y, float)
        colour = COLOURS[k % len(COLOURS)]
        poly = np.array([to_px(a, b) for a, b in zip(x, y)], np.int32)
        cv2.polylines(panel, [poly], False, colour, 1, cv2.LINE_AA)
        cv2.putText(panel, name, (left + 6 + 90 * (k % 5), top + 14 + 12 * (k // 5)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, colour, 1, cv2.LINE_AA)


def read_metrics(path: Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` that were written whole (a killed run can leave half a line)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def curves(metrics_path: Path, out: Path) -> None:
    """Losses and held-out errors against the step, from ``metrics.jsonl``."""
    rows = read_metrics(metrics_path)
    train = [r for r in rows if "eval" not in r]
    evals = [r for r in rows if "eval" in r]
    pick = lambda key: ([r["step"] for r in train if key in r], [r[key] for r in train if key in r])
    panels = np.full((3 * 220, 640, 3), 255, np.uint8)
    _plot(panels[0:220], {k: pick(k) for k in ("loss_d", "loss_g", "wdist")}, "adversarial losses")
    _plot(panels[220:440], {k: pick(k) for k in ("loss_sup", "gp", "trust")}, "supervised / penalties", log_y=True)
    err = {}
    if evals:
        n = len(evals[-1]["eval"]["corner_error"])
        for i in range(n):
            pts = [(r["step"], r["eval"]["corner_error"][i]) for r in evals if len(r["eval"]["corner_error"]) > i]
            err["initial" if i == 0 else f"after G{i}"] = ([p[0] for p in pts], [p[1] for p in pts])
    _plot(panels[440:660], err, "held-out corner error (px at model size)")
    imageio.write_image(out, panels)


def model_card(mc, cfg, final_eval: dict | None, init_note: dict | None) -> str:
    """README.md of a trained model folder: what it is, how it was made, what it measured."""
    from ..model.modelstore import CARD_HEADER

    lines = [CARD_HEADER, f"# {mc.name}", "",
             f"ST-GAN model: {mc.warps} warp generators at {mc.image_size[0]}x{mc.image_size[1]}, domain "
             f"`{mc.domain}`.", "", "## Training", "",
             f"- data: `{cfg.data.path}` ({cfg.data.kind})",
             f"- stages (steps): pretrain {cfg.stages.pretrain}, D pretrain {cfg.stages.d_pretrain}, "
             f"{cfg.stages.warp} per warp, end-to-end {cfg.stages.end_to_end}",
             f"- batch {cfg.optim.batch_size}, lr G {cfg.optim.lr_g:g} (pretrain {cfg.optim.lr_pretrain:g}), "
             f"lr D {cfg.optim.lr_d:g}, D steps {cfg.optim.d_steps}, GP {cfg.optim.gp_weight:g}, "
             f"trust region {cfg.optim.trust_weight:g}, history {cfg.optim.history}",
             f"- perturbation: homography {cfg.perturb.homography:g}, translation {cfg.perturb.translation:g}, "
             f"background {cfg.perturb.background:g}",
             f"- seed {cfg.run.seed}"]
    if init_note:
        lines.append(f"- refined from `{init_note['from']}` (its discriminator {init_note['discriminator']})")
    if final_eval:
        lines += ["", "## Held-out placement error (at the end of training)", "",
                  "| | corner error (px) | shape error (px) | mask IoU |", "|---|---|---|---|"]
        for i, (c, s, u) in enumerate(zip(final_eval["corner_error"], final_eval["shape_error"], final_eval["iou"])):
            lines.append(f"| {'initial' if i == 0 else f'after G{i}'} | {c:.2f} | {s:.2f} | {u:.3f} |")
    lines += ["", "## Limits", "", "Measured only on data like the training data; see the project README.", ""]
    return "\n".join(lines)
