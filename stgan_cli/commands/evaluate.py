"""``stgan eval MODEL --data DIR``: how much better placed the object is after each generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import friendly_errors, log, resolve_device


@friendly_errors
def evaluate(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registry name, model folder or hf-hub:ORG/REPO.")],
    data: Annotated[Path, typer.Option("--data", help="Paired dataset folder (e.g. the test/ split).")],
    n: Annotated[int, typer.Option("--n", help="Samples to evaluate (cycled when the set is smaller).", min=1)] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation perturbations.")] = 0,
    homography: Annotated[Optional[float], typer.Option(
        "--homography", help="Perturbation std of every sl(3) parameter (default: the model's training value).")] = None,
    translation: Annotated[Optional[float], typer.Option(
        "--translation", help="Extra translation std (default: the model's training value).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Folder for the best/median/worst grid and a histogram.")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    offline: Annotated[bool, typer.Option("--offline")] = False,
):
    """Perturb the true placements, run the generators, and measure corner error, shape error, IoU and
    realism after every iteration."""
    import numpy as np
    import torch

    from .. import modelstore
    from ..data.datasets import PairedDataset
    from ..data.perturb import warp_noise
    from ..evaluation import evaluate_batches

    loaded = modelstore.open_model(model, offline)
    dev = resolve_device(device)
    net = loaded.net.to(dev)
    cfg = loaded.config
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
    p0 = warp_noise(n, std_h, std_t, np.random.default_rng(seed))
    result = evaluate_batches(net, ds, idx, torch.from_numpy(p0).float(), cfg.image_size, dev,
                              keep_images=report is not None, eyes=eyes)
    summary = {"model": loaded.ref, "data": str(data), "n": n, "seed": seed,
               "perturbation": {"homography": std_h, "translation": std_t}, **result["means"]}
    if as_json:
        print(json.dumps(summary))
    else:
        _table(result, cfg.warps)
    if report is not None:
        from ..training.report import eval_report

        eval_report(result, report)
        log(f"report written to {report}")


def _table(result: dict, warps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"placement error over {result['n']} samples (pixels at the model size)")
    m, med = result["means"], result["medians"]
    columns = ["", "corner err (mean / median)", "shape err (mean / median)", "x / y err (mean)", "IoU (mean)",
               "realism (D)"]
    if "lens_error" in m:
        columns.append("lens err / eye dist (mean / median)")
    for col in columns:
        table.add_column(col, justify="right")
    for i in range(len(m["corner_error"])):
        label = "initial" if i == 0 else f"after G{i}"
        realism = f"{m['realism'][i]:.3f}" if m.get("realism") else "-"
        row = [label, f"{m['corner_error'][i]:.2f} / {med['corner_error'][i]:.2f}",
               f"{m['shape_error'][i]:.2f} / {med['shape_error'][i]:.2f}",
               f"{m['x_error'][i]:.2f} / {m['y_error'][i]:.2f}", f"{m['iou'][i]:.3f}", realism]
        if "lens_error" in m:
            row.append(f"{m['lens_error'][i]:.3f} / {med['lens_error'][i]:.3f}")
        table.add_row(*row)
    Console().print(table)
