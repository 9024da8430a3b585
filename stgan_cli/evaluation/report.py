"""What ``stgan eval`` shows: its tables (terminal, Markdown) for generated pairs and real photos, and
the pictures of ``--report`` (best, median and worst cases; the error histogram)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..files import imageio
from ..training.report import sample_grid


def photo_cells(r: dict, i: int = -1) -> list[str]:
    worse = "-" if r["model"] is None else f"{100 * r['worse_share']:.0f} %"
    return [f"{r['corner_pct'][i]:.2f} / {r['corner_pct_median'][i]:.2f}",
            f"{r['corner_px'][i]:.1f} / {r['corner_px_median'][i]:.1f}", worse,
            f"{r['area_change_pct'][i]:+.1f} % ({r['area_change_abs_pct'][i]:.1f} %)", f"{r['iou'][i]:.3f}"]


PHOTO_COLUMNS = ["corner error, % of diagonal (mean / median)", "corner error px (mean / median)",
                 "worse than start", "area change (mean, mean abs)", "box IoU"]


def photo_markdown(rows: list[dict]) -> str:
    lines = ["| model | " + " | ".join(PHOTO_COLUMNS) + " |", "|---" * (len(PHOTO_COLUMNS) + 1) + "|"]
    for r in rows:
        name = r.get("name") or ("identity (no correction)" if r["model"] is None else f"{r['label']} ({r['warps']} G)")
        lines.append(f"| {name} | " + " | ".join(photo_cells(r)) + " |")
    return "\n".join(lines)


def photo_table(rows: list[dict], common: dict) -> None:
    from rich.table import Table

    start = {"box": f"the true box shifted and scaled (std {common['box_std']})", "truth": "the true placement",
             "sl3": "sl(3) noise"}[common["protocol"]]
    decoys = ", a decoy hole in each" if common.get("decoys") else ""
    table = Table(title=f"real photos at full resolution, {common['n']} cases from {start}{decoys}, same starts for all")
    for col in ["model", "G", *PHOTO_COLUMNS, "per iteration (% diag)"]:
        table.add_column(col, justify="right")
    for r in rows:
        steps = " ".join(f"{v:.2f}" for v in r["corner_pct"]) if r["model"] else "-"
        table.add_row(r["label"], str(r["warps"]), *photo_cells(r), steps)
    console().print(table)


def breakdown_cells(entry: dict, label: str) -> str:
    m = entry["models"][label]
    return f"{m['corner_pct']:.2f} ({m['change_pct']:+.0f} %), worse {100 * m['worse_share']:.0f} %"


def breakdown_markdown(entries: list[dict]) -> str:
    """The same runs by object size and by source: identity's error and each model's, its change and
    the share of pairs it leaves worse."""
    names = list(entries[0]["models"]) if entries else []
    lines = ["| pairs by | | n | identity, % of diagonal | " + " | ".join(names) + " |",
             "|---" * (4 + len(names)) + "|"]
    for e in entries:
        kind = "object size" if e["group"] == "size" else "source"
        lines.append(f"| {kind} | {e['label']} | {e['n']} | {e['identity']:.2f} | "
                     + " | ".join(breakdown_cells(e, n) for n in names) + " |")
    return "\n".join(lines)


def breakdown_table(entries: list[dict]) -> None:
    from rich.table import Table

    names = list(entries[0]["models"]) if entries else []
    table = Table(title="the same runs by object size (share of the photo) and by source: "
                        "final % of diagonal (change from the start), share made worse")
    for col in ["pairs by", "", "n", "identity", *names]:
        table.add_column(col, justify="right")
    for e in entries:
        table.add_row("object size" if e["group"] == "size" else "source", e["label"], str(e["n"]),
                      f"{e['identity']:.2f}", *(breakdown_cells(e, n) for n in names))
    console().print(table)


def labels(refs: list[str]) -> list[str]:
    """Short names for a table: the folder name, with its parent where that alone is ambiguous."""
    names = [Path(r).name for r in refs]
    return [f"{Path(r).parent.name}/{nm}" if names.count(nm) > 1 or nm == "model" else nm
            for r, nm in zip(refs, names)]


def console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:  # a pipe or a file: no width to wrap to
        console = Console(width=160)
    return console


def markdown(summaries: list[dict]) -> str:
    """One model: a row per iteration. Several: identity, then each model's final placement."""
    lens = "lens_error" in summaries[0]
    head = ["| | corner error (px, % of diagonal) | shape error (px) | x / y error (px) | top / base corners (px) "
            "| mask IoU | realism (D) | D prefers truth |" +
            (" lens error / eye distance (mean / median) | lens worse than start | width / eye distance (plausible) |"
             if lens else ""), "|---|---|---|---|---|---|---|---|" + ("---|---|---|" if lens else "")]

    def row(label, s, i):
        realism = f"{s['realism'][i]:.3f}" if s.get("realism") else "-"
        line = f"| {label} | {' | '.join(cells(s, i, ' %'))} | {realism} | {preferred(s, i)} |"
        if lens:
            worse = f"{100 * s['lens_worse'][i]:.0f} %" if i and s.get("lens_worse") else "-"
            line += (f" {s['lens_error'][i]:.3f} / {s['lens_error_median'][i]:.3f} | {worse} | "
                     f"{s['glasses_width'][i]:.2f} ({100 * s['width_plausible'][i]:.0f} %) |")
        return line

    first = summaries[0]
    if len(summaries) == 1:
        lines = head + [row("initial" if i == 0 else f"after G{i}", first, i) for i in range(len(first["corner_error"]))]
        if first.get("realism_truth"):
            lines.append(f"| truth | 0 | 0 | 0 / 0 | 0 / 0 | 1 | {first['realism_truth'][0]:.3f} | - |" +
                         (" 0 | - | - |" if lens else ""))
        return "\n".join(lines)
    lines = head + [row("identity (no correction)", dict(first, realism=None, truth_preferred=None), 0)]
    lines += [row(f"{s['label']} ({s['warps']} G)", s, -1) for s in summaries]
    return "\n".join(lines)


def cells(s: dict, i: int, pct: str = "") -> list[str]:
    """Corner (with % of diagonal), shape, x / y, top / base and IoU of summary ``s`` after iteration ``i``."""
    return [f"{s['corner_error'][i]:.2f} ({s['corner_error_pct'][i]:.1f}{pct})", f"{s['shape_error'][i]:.2f}",
            f"{s['x_error'][i]:.2f} / {s['y_error'][i]:.2f}", f"{s['top_error'][i]:.2f} / {s['base_error'][i]:.2f}",
            f"{s['iou'][i]:.3f}"]


def preferred(s: dict, i: int) -> str:
    return f"{100 * s['truth_preferred'][i]:.0f} %" if s.get("truth_preferred") else "-"


def comparison(summaries: list[dict], n: int) -> None:
    from rich.table import Table

    table = Table(title=f"final placement error over {n} samples, same perturbations (pixels at the model size)")
    for col in ("model", "G", "corner (% diag)", "shape", "x / y", "top / base", "IoU", "worse step"):
        table.add_column(col, justify="right")
    table.add_row("identity", "0", *cells(summaries[0], 0), "-")
    for s in summaries:
        ce = s["corner_error"]
        worse = [i for i in range(1, len(ce)) if ce[i] > ce[i - 1]]
        table.add_row(s["label"], str(s["warps"]), *cells(s, -1), ", ".join(f"G{i}" for i in worse) or "no")
    console().print(table)


def table(result: dict, warps: int) -> None:
    from rich.table import Table

    table = Table(title=f"placement error over {result['n']} samples (pixels at the model size)")
    m, med = result["means"], result["medians"]
    columns = ["", "corner err (mean / median, % of diagonal)", "shape err (mean / median)", "x / y err (mean)",
               "top / base corners (mean)", "IoU (mean)", "realism (D)", "D prefers truth"]
    if "lens_error" in m:
        columns += ["lens err / eye dist (mean / median)", "lens worse than start", "width / eye dist (plausible)"]
    for col in columns:
        table.add_column(col, justify="right")
    for i in range(len(m["corner_error"])):
        label = "initial" if i == 0 else f"after G{i}"
        realism = f"{m['realism'][i]:.3f}" if m.get("realism") else "-"
        row = [label, f"{m['corner_error'][i]:.2f} / {med['corner_error'][i]:.2f} ({m['corner_error_pct'][i]:.1f} %)",
               f"{m['shape_error'][i]:.2f} / {med['shape_error'][i]:.2f}",
               f"{m['x_error'][i]:.2f} / {m['y_error'][i]:.2f}", f"{m['top_error'][i]:.2f} / {m['base_error'][i]:.2f}",
               f"{m['iou'][i]:.3f}", realism, preferred(m, i)]
        if "lens_error" in m:
            row += [f"{m['lens_error'][i]:.3f} / {med['lens_error'][i]:.3f}",
                    f"{100 * m['lens_worse'][i]:.0f} %" if i else "-",
                    f"{m['glasses_width'][i]:.2f} ({100 * m['width_plausible'][i]:.0f} %)"]
        table.add_row(*row)
    if m.get("realism_truth"):
        table.add_row("truth", "0", "0", "0", "0", "1", f"{m['realism_truth'][0]:.3f}", "-",
                      *(["0", "-", "-"] if "lens_error" in m else []))
    console().print(table)


def images(result: dict, folder: Path) -> None:
    """``cases.png`` (best, median and worst: initial | each iteration | truth) and ``histogram.png``
    (corner error before and after, over all samples)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = result["images"]
    n_cols = next(iter(rows.values()))[0].shape[0]
    labels = ["initial"] + [f"G{i}" for i in range(1, n_cols - 1)] + ["truth"]
    columns = [np.stack([rows[name][0][j] for name in ("best", "median", "worst")]) for j in range(n_cols)]
    import torch

    sample_grid([torch.from_numpy(c) if not hasattr(c, "detach") else c for c in columns], folder / "cases.png", labels)
    before = result["per_sample"]["corner_error"][0]
    after = result["per_sample"]["corner_error"][-1]
    w, h, left, bottom = 640, 300, 40, 30
    img = np.full((h, w, 3), 255, np.uint8)
    top = max(before.max(), after.max(), 1e-6)
    bins = np.linspace(0, top, 31)
    hb, _ = np.histogram(before, bins)
    ha, _ = np.histogram(after, bins)
    peak = max(hb.max(), ha.max(), 1)
    bw = (w - left - 10) / 30
    for i in range(30):
        for counts, colour, off in ((hb, (214, 39, 40), 0), (ha, (31, 119, 180), bw / 2)):
            x0 = int(left + i * bw + off)
            y0 = int(h - bottom - counts[i] / peak * (h - bottom - 30))
            cv2.rectangle(img, (x0, y0), (int(x0 + bw / 2) - 1, h - bottom), colour, -1)
    cv2.putText(img, f"corner error (px): initial mean {before.mean():.2f} (red), final mean {after.mean():.2f} (blue)",
                (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    for frac in (0, 0.5, 1):
        cv2.putText(img, f"{frac * top:.1f}", (int(left + frac * (w - left - 30)), h - 10), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38, (60, 60, 60), 1, cv2.LINE_AA)
    imageio.write_image(folder / "histogram.png", img)


# The 68-point face as lines (iBUG 300-W): jaw, brows, nose bridge, nostrils, eyes, lips (closed or not).
_FACE_LINES = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
               (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True))
_START, _MODEL, _TRUTH = (230, 120, 20), (30, 160, 60), (40, 90, 220)  # RGB


def sketches(result: dict, landmarks: dict, folder: Path, scale: int = 3) -> bool:
    """``sketch.png``: the best, median and worst glasses cases drawn without the faces' pixels: each
    face's landmark lines (``landmarks``: pick name -> (68, 2) frame pixels), and the outline of the
    glasses where they started (orange), where the model left them (green) and where the truth has
    them (blue), with the lens errors.  False (nothing written) where a pick has no landmarks."""
    if any(landmarks.get(name) is None for name in ("best", "median", "worst")):
        return False
    lens = result["per_sample"]["lens_error"]
    panels = []
    for name in ("best", "median", "worst"):
        alphas = result["alphas"][name]
        h, w = alphas.shape[1:]
        img = np.full((h * scale, w * scale, 3), 255, np.uint8)
        pts = (np.asarray(landmarks[name], float) + 0.5) * scale - 0.5
        for a, b, closed in _FACE_LINES:
            cv2.polylines(img, [np.round(pts[a:b] * 4).astype(np.int32)], closed, (150, 150, 150), 1, cv2.LINE_AA,
                          shift=2)
        for alpha, colour, width in ((alphas[-1], _TRUTH, 3), (alphas[0], _START, 1), (alphas[-2], _MODEL, 1)):
            big = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
            contours, _ = cv2.findContours((big > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, contours, -1, colour, width, cv2.LINE_AA)
        row = result["pick_rows"][name]
        cv2.putText(img, f"{name}: lens error {lens[0][row]:.3f} -> {lens[-1][row]:.3f}", (6, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(img)
    strip = np.full((22, sum(p.shape[1] for p in panels) + 2 * (len(panels) - 1), 3), 255, np.uint8)
    x = 6
    for text, colour in (("start", _START), ("model", _MODEL), ("truth (landmarks)", _TRUTH),
                         ("lens error in eye distances; faces drawn from their landmarks", (90, 90, 90))):
        cv2.putText(strip, text, (x, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
        x += 12 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)[0][0]
    gap = np.full((panels[0].shape[0], 2, 3), 200, np.uint8)
    body = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
    imageio.write_image(Path(folder) / "sketch.png", np.concatenate([strip, body]))
    return True
