"""``stgan eval MODEL --data DIR``: how much better placed the object is after each generator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import StganError, UsageError
from ._common import friendly_errors, log, resolve_device
from .options import DeviceOpt, OfflineOpt


@friendly_errors
def evaluate(
    models: Annotated[list[str], typer.Argument(
        metavar="MODEL...", help="Registry name, model folder or hf-hub:ORG/REPO; several are compared on the "
                                 "same perturbed samples.")],
    data: Annotated[Path, typer.Option("--data", help="Paired dataset folder (e.g. the test/ split).")],
    n: Annotated[Optional[int], typer.Option(
        "--n", help="Samples to evaluate (cycled when the set is smaller). Default: 200 generated, every real "
                    "photo pair.", min=1)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation perturbations.")] = 0,
    homography: Annotated[Optional[float], typer.Option(
        "--homography", help="Perturbation std of every sl(3) parameter (default: the model's training value).")] = None,
    translation: Annotated[Optional[float], typer.Option(
        "--translation", help="Extra translation std (default: the model's training value).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="The table as Markdown (for model cards).")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Folder for the best/median/worst grid and a histogram.")] = None,
    protocol: Annotated[str, typer.Option(
        "--protocol", help="Real photos: where each case starts. box (the true box shifted and scaled, "
                           "placed like --box) | sl3 (the paper's warp noise) | truth.")] = "box",
    box_std: Annotated[float, typer.Option(
        "--box-std", help="Real photos, box protocol: std of the shift and log-scale, as a fraction of the "
                          "object's size.", min=0.0)] = 0.12,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-k", help="Generators to run (default: each model's default_iterations).", min=0)] = None,
    trust: Annotated[str, typer.Option(
        "--trust-region", help="The inference limits, as in composite: default (each model's own), off, or "
                               "move=..,scale=..,rotate=..,shape=.. over the default.")] = "default",
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
):
    """Perturb the true placements, run the generators, and measure corner error, shape error, IoU and
    realism after every iteration. With several models, one table compares their final placements."""
    import numpy as np
    import torch

    from .. import modelstore
    from ..data.datasets import PairedDataset
    from ..data.perturb import warp_noise
    from ..evaluation import evaluate_batches

    from ..photo_eval import PROTOCOLS, is_photo_dataset
    from ..trust_region import Limits, parse as parse_trust

    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS)}")
    parse_trust(trust, Limits())
    dev = resolve_device(device)
    opened = [modelstore.open_model(m, offline) for m in models]
    if is_photo_dataset(data):
        return _evaluate_photos(opened, data, n, seed, protocol, box_std, homography, translation, dev,
                                as_json, markdown, report, trust, iterations)
    n = n or 200
    _check_iterations(opened, iterations)
    cfg = opened[0].config
    for other in opened[1:]:
        if tuple(other.config.image_size) != tuple(cfg.image_size):
            raise StganError(f"{other.ref}: works at {other.config.image_size}, {opened[0].ref} at {cfg.image_size}; "
                             "errors in pixels are only comparable at one size")
    trained = (cfg.provenance or {}).get("perturbation", {})
    std_h = homography if homography is not None else trained.get("homography", 0.1)
    std_t = translation if translation is not None else trained.get("translation", 0.1)
    eyes = None
    if cfg.domain == "glasses" and (Path(data) / "real").is_dir():  # a `stgan data glasses` folder
        from ..data.datasets import GlassesEvalSet
        from ..faces import canonical_eyes

        ds = GlassesEvalSet.load(data, cfg.image_size)
        eyes = torch.from_numpy(canonical_eyes(cfg.image_size)).float()
    else:
        ds = PairedDataset.load(data, cfg.image_size)
    idx = np.resize(np.arange(len(ds)), n)
    p0 = torch.from_numpy(warp_noise(n, std_h, std_t, np.random.default_rng(seed))).float()
    labels = _labels([m.ref for m in opened])
    diagonal = float(np.hypot(*cfg.image_size))
    summaries = []
    for label, loaded in zip(labels, opened):
        k = iterations if iterations is not None else loaded.config.iterations
        result = evaluate_batches(loaded.net.to(dev), ds, idx, p0, cfg.image_size, dev,
                                  keep_images=report is not None, eyes=eyes,
                                  limits=parse_trust(trust, loaded.trust_limits()), iterations=k)
        result["means"]["corner_error_pct"] = [round(100 * c / diagonal, 3) for c in result["means"]["corner_error"]]
        summaries.append({"model": loaded.ref, "label": label, "warps": k, **result["means"]})
        if len(opened) == 1 and not (as_json or markdown):
            _table(result, k)
        if report is not None:
            from ..training.report import eval_report

            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            eval_report(result, folder)
            log(f"report written to {folder}")
    common = {"data": str(data), "n": n, "seed": seed, "perturbation": {"homography": std_h, "translation": std_t}}
    if as_json:
        if len(opened) == 1:
            summary = summaries[0]
            print(json.dumps({"model": summary["model"], **common,
                              **{k: v for k, v in summary.items() if k not in ("model", "label", "warps")}}))
        else:
            print(json.dumps({**common, "models": summaries}))
    elif markdown:
        print(_markdown(summaries))
    elif len(opened) > 1:
        _comparison(summaries, n)


def _evaluate_photos(opened, data: Path, n: int, seed: int, protocol: str, box_std: float, homography, translation,
                     dev: str, as_json: bool, markdown: bool, report: Optional[Path], trust: str,
                     iterations: Optional[int]) -> None:
    """Real photos at full resolution: every model from the same starting placements."""
    import numpy as np

    _check_iterations(opened, iterations)
    from .. import photo_eval
    from ..trust_region import parse as parse_trust

    cases = photo_eval.load_cases(data)
    cases = [cases[i] for i in np.resize(np.arange(len(cases)), n or len(cases))]
    trained = (opened[0].config.provenance or {}).get("perturbation", {})
    sl3 = (homography if homography is not None else trained.get("homography", 0.1),
           translation if translation is not None else trained.get("translation", 0.1))
    inits = photo_eval.initial_placements(cases, protocol, np.random.default_rng(seed), box_std, sl3)
    rows = [{"label": "identity", "model": None, "warps": 0,
             **photo_eval.summarise(cases, [[m] for m in inits])}]
    labels = _labels([m.ref for m in opened])
    for label, loaded in zip(labels, opened):
        net = loaded.net.to(dev)
        k = iterations if iterations is not None else loaded.config.iterations
        homs = photo_eval.predict(net, cases, inits, loaded.config.image_size, dev,
                                  limits=parse_trust(trust, loaded.trust_limits()), iterations=k)
        row = {"label": label, "model": loaded.ref, "warps": k, **photo_eval.summarise(cases, homs)}
        rows.append(row)
        if report is not None:
            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            photo_eval.report(folder, cases, homs, row, label)
            log(f"report written to {folder}")
    common = {"data": str(data), "n": len(cases), "seed": seed, "protocol": protocol, "trust_region": trust,
              "box_std": box_std if protocol == "box" else None,
              "perturbation": {"homography": sl3[0], "translation": sl3[1]} if protocol == "sl3" else None}
    public = [{k: v for k, v in r.items() if k != "per_case_pct"} for r in rows]
    if as_json:
        print(json.dumps({**common, "models": public}))
    elif markdown:
        print(_photo_markdown(public))
    else:
        _photo_table(public, common)


def _check_iterations(opened, iterations: Optional[int]) -> None:
    for m in opened:
        if iterations is not None and iterations > m.config.warps:
            raise UsageError(f"--iterations {iterations}: {m.ref} has {m.config.warps} generators")


def _photo_cells(r: dict, i: int = -1) -> list[str]:
    worse = "-" if r["model"] is None else f"{100 * r['worse_share']:.0f} %"
    return [f"{r['corner_pct'][i]:.2f} / {r['corner_pct_median'][i]:.2f}",
            f"{r['corner_px'][i]:.1f} / {r['corner_px_median'][i]:.1f}", worse,
            f"{r['area_change_pct'][i]:+.1f} % ({r['area_change_abs_pct'][i]:.1f} %)", f"{r['iou'][i]:.3f}"]


PHOTO_COLUMNS = ["corner error, % of diagonal (mean / median)", "corner error px (mean / median)",
                 "worse than start", "area change (mean, mean abs)", "box IoU"]


def _photo_markdown(rows: list[dict]) -> str:
    lines = ["| model | " + " | ".join(PHOTO_COLUMNS) + " |", "|---" * (len(PHOTO_COLUMNS) + 1) + "|"]
    for r in rows:
        name = "identity (no correction)" if r["model"] is None else f"{r['label']} ({r['warps']} G)"
        lines.append(f"| {name} | " + " | ".join(_photo_cells(r)) + " |")
    return "\n".join(lines)


def _photo_table(rows: list[dict], common: dict) -> None:
    from rich.table import Table

    start = {"box": f"the true box shifted and scaled (std {common['box_std']})", "truth": "the true placement",
             "sl3": "sl(3) noise"}[common["protocol"]]
    table = Table(title=f"real photos at full resolution, {common['n']} cases from {start}, same starts for all")
    for col in ["model", "G", *PHOTO_COLUMNS, "per iteration (% diag)"]:
        table.add_column(col, justify="right")
    for r in rows:
        steps = " ".join(f"{v:.2f}" for v in r["corner_pct"]) if r["model"] else "-"
        table.add_row(r["label"], str(r["warps"]), *_photo_cells(r), steps)
    _console().print(table)


def _labels(refs: list[str]) -> list[str]:
    """Short names for a table: the folder name, with its parent where that alone is ambiguous."""
    names = [Path(r).name for r in refs]
    return [f"{Path(r).parent.name}/{nm}" if names.count(nm) > 1 or nm == "model" else nm
            for r, nm in zip(refs, names)]


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:  # a pipe or a file: no width to wrap to
        console = Console(width=160)
    return console


def _markdown(summaries: list[dict]) -> str:
    """One model: a row per iteration. Several: identity, then each model's final placement."""
    head = ["| | corner error (px, % of diagonal) | shape error (px) | x / y error (px) | top / base corners (px) "
            "| mask IoU | realism (D) | D prefers truth |", "|---|---|---|---|---|---|---|---|"]

    def row(label, s, i):
        realism = f"{s['realism'][i]:.3f}" if s.get("realism") else "-"
        return f"| {label} | {' | '.join(_cells(s, i, ' %'))} | {realism} | {_preferred(s, i)} |"

    first = summaries[0]
    if len(summaries) == 1:
        lines = head + [row("initial" if i == 0 else f"after G{i}", first, i) for i in range(len(first["corner_error"]))]
        if first.get("realism_truth"):
            lines.append(f"| truth | 0 | 0 | 0 / 0 | 0 / 0 | 1 | {first['realism_truth'][0]:.3f} | - |")
        return "\n".join(lines)
    lines = head + [row("identity (no correction)", dict(first, realism=None, truth_preferred=None), 0)]
    lines += [row(f"{s['label']} ({s['warps']} G)", s, -1) for s in summaries]
    return "\n".join(lines)


def _cells(s: dict, i: int, pct: str = "") -> list[str]:
    """Corner (with % of diagonal), shape, x / y, top / base and IoU of summary ``s`` after iteration ``i``."""
    return [f"{s['corner_error'][i]:.2f} ({s['corner_error_pct'][i]:.1f}{pct})", f"{s['shape_error'][i]:.2f}",
            f"{s['x_error'][i]:.2f} / {s['y_error'][i]:.2f}", f"{s['top_error'][i]:.2f} / {s['base_error'][i]:.2f}",
            f"{s['iou'][i]:.3f}"]


def _preferred(s: dict, i: int) -> str:
    return f"{100 * s['truth_preferred'][i]:.0f} %" if s.get("truth_preferred") else "-"


def _comparison(summaries: list[dict], n: int) -> None:
    from rich.table import Table

    table = Table(title=f"final placement error over {n} samples, same perturbations (pixels at the model size)")
    for col in ("model", "G", "corner (% diag)", "shape", "x / y", "top / base", "IoU", "worse step"):
        table.add_column(col, justify="right")
    table.add_row("identity", "0", *_cells(summaries[0], 0), "-")
    for s in summaries:
        ce = s["corner_error"]
        worse = [i for i in range(1, len(ce)) if ce[i] > ce[i - 1]]
        table.add_row(s["label"], str(s["warps"]), *_cells(s, -1), ", ".join(f"G{i}" for i in worse) or "no")
    _console().print(table)


def _table(result: dict, warps: int) -> None:
    from rich.table import Table

    table = Table(title=f"placement error over {result['n']} samples (pixels at the model size)")
    m, med = result["means"], result["medians"]
    columns = ["", "corner err (mean / median, % of diagonal)", "shape err (mean / median)", "x / y err (mean)",
               "top / base corners (mean)", "IoU (mean)", "realism (D)", "D prefers truth"]
    if "lens_error" in m:
        columns.append("lens err / eye dist (mean / median)")
    for col in columns:
        table.add_column(col, justify="right")
    for i in range(len(m["corner_error"])):
        label = "initial" if i == 0 else f"after G{i}"
        realism = f"{m['realism'][i]:.3f}" if m.get("realism") else "-"
        row = [label, f"{m['corner_error'][i]:.2f} / {med['corner_error'][i]:.2f} ({m['corner_error_pct'][i]:.1f} %)",
               f"{m['shape_error'][i]:.2f} / {med['shape_error'][i]:.2f}",
               f"{m['x_error'][i]:.2f} / {m['y_error'][i]:.2f}", f"{m['top_error'][i]:.2f} / {m['base_error'][i]:.2f}",
               f"{m['iou'][i]:.3f}", realism, _preferred(m, i)]
        if "lens_error" in m:
            row.append(f"{m['lens_error'][i]:.3f} / {med['lens_error'][i]:.3f}")
        table.add_row(*row)
    if m.get("realism_truth"):
        table.add_row("truth", "0", "0", "0", "0", "1", f"{m['realism_truth'][0]:.3f}", "-",
                      *(["0"] if "lens_error" in m else []))
    _console().print(table)
