"""``stgan eval MODEL --data DIR``: how much better placed the object is after each generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ._common import finite_number, friendly_errors, log, resolve_device, tracked
from .options import DeviceOpt, OfflineOpt


@friendly_errors
def evaluate(
    models: Annotated[list[str], typer.Argument(
        metavar="MODEL...", help="Registry name, model folder or hf-hub:ORG/REPO; several are compared on the "
                                 "same perturbed samples.")],
    data: Annotated[Path, typer.Option("--data", help="Paired dataset folder (e.g. the test/ split).")],
    n: Annotated[Optional[int], typer.Option(
        "--n", help="Samples to evaluate (cycled when the set is smaller). Default: 200 generated (all if fewer), every real "
                    "photo pair.", min=1)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation perturbations.")] = 0,
    homography: Annotated[Optional[float], typer.Option(
        "--homography", help="Perturbation std of every sl(3) parameter (default: the model's training value).",
        min=0.0, callback=finite_number)] = None,
    translation: Annotated[Optional[float], typer.Option(
        "--translation", help="Extra translation std (default: the model's training value).", min=0.0,
        callback=finite_number)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="The table as Markdown (for model cards).")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Folder for the best/median/worst grid and a histogram.")] = None,
    protocol: Annotated[Optional[str], typer.Option(
        "--protocol", help="Where each case starts. Real photos: box (the true box shifted and scaled, placed "
                           "like --box; the default) | sl3 (the paper's warp noise) | truth. Generated pairs and "
                           "glasses: sl3 (the default) | truth; glasses also detector (where OpenCV's Haar "
                           "detector puts the eyes, against the landmarks' truth). Real photos also auto: where "
                           "the placement critic (--critic) puts each object with no box, against MODEL's fixed "
                           "spot and a random candidate.")] = None,
    box_std: Annotated[float, typer.Option(
        "--box-std", help="Real photos, box protocol: std of the shift and log-scale, as a fraction of the "
                          "object's size.", min=0.0, callback=finite_number)] = 0.12,
    decoys: Annotated[bool, typer.Option(
        "--decoys", help="Real photos: a second filled hole in each background, at the mirror of the truth "
                         "about the start, so that the hole left by the object is no cue.")] = False,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-k", help="Generators to run (default: each model's default_iterations).", min=0)] = None,
    trust: Annotated[str, typer.Option(
        "--trust-region", help="The inference limits, as in composite: default (each model's own), off, or "
                               "KEY=VALUE pairs over the default (keys move, scale, rotate, shape; "
                               "e.g. move=0.3,scale=1.2).")] = "default",
    critic: Annotated[Optional[str], typer.Option(
        "--critic", help="--protocol auto: the placement critic (model folder or name). Default: placement.")] = None,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
):
    """Perturb the true placements, run the generators, and measure corner error, shape error, IoU and
    realism after every iteration. With several models, one table compares their final placements.
    A harmonizer (e.g. harmonize) on a `stgan data harmonize` split: MSE, fMSE, PSNR and the share made
    worse, against the composite and the statistics transfer."""
    from ..core.trust_region import Limits, parse as parse_trust
    from ..evaluation import runs
    from ..evaluation.photos import PROTOCOLS, is_photo_dataset
    from ..model import modelstore

    folder = runs.harmonizer_folder(models[0], data, offline)
    if folder is not None:
        if len(models) > 1:
            raise UsageError("a harmonizer is evaluated alone: give one MODEL")
        return _say_harmonize(folder, runs.harmonize(folder, data, report=report, track=tracked, log=log), as_json)
    parse_trust(trust, Limits())
    photos = is_photo_dataset(data)
    if protocol == "auto" and not photos:
        raise UsageError(f"--protocol auto: {data} is not a set of real photo pairs (stgan data from-photos)")
    if photos and (protocol or "box") not in PROTOCOLS + ("auto",):
        raise UsageError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS + ('auto',))}")
    if decoys and not photos:
        raise UsageError(f"--decoys: {data} is not a set of real photo pairs (stgan data from-photos)")
    dev, say = resolve_device(device), dict(track=tracked, log=log)
    if protocol == "auto":
        model = modelstore.open_model(models[0], offline)
        return _say_auto(data, model, runs.auto(model, data, critic=critic, seed=seed, dev=dev, trust=trust, **say),
                         as_json)
    opened = [modelstore.open_model(m, offline) for m in models]
    if photos:
        return _say_photos(runs.photos(opened, data, n=n, seed=seed, protocol=protocol or "box", box_std=box_std,
                                       homography=homography, translation=translation, dev=dev, report=report,
                                       trust=trust, iterations=iterations, decoys=decoys, **say), as_json, markdown)
    _say_generated(runs.generated(opened, data, n=n, seed=seed, protocol=protocol, homography=homography,
                                  translation=translation, iterations=iterations, trust=trust, dev=dev,
                                  report=report, **say), as_json, markdown)


def _say_generated(out: dict, as_json: bool, markdown: bool) -> None:
    from ..evaluation import report as eval_report

    summaries, common = out["summaries"], out["common"]
    if len(summaries) == 1 and not (as_json or markdown):
        eval_report.table(*out["results"][0])
    if as_json:
        if len(summaries) == 1:
            summary = summaries[0]
            print(json.dumps({"model": summary["model"], **common,
                              **{k: v for k, v in summary.items() if k not in ("model", "label", "warps")}}))
        else:
            print(json.dumps({**common, "models": summaries}))
    elif markdown:
        print(eval_report.markdown(summaries))
    elif len(summaries) > 1:
        eval_report.comparison(summaries, common["n"])


def _say_photos(out: dict, as_json: bool, markdown: bool) -> None:
    from ..evaluation import report as eval_report

    if as_json:
        print(json.dumps({**out["common"], "models": out["models"], "by_group": out["by_group"]}))
    elif markdown:
        print(eval_report.photo_markdown(out["models"]) + "\n\n" + eval_report.breakdown_markdown(out["by_group"]))
    else:
        eval_report.photo_table(out["models"], out["common"])
        eval_report.breakdown_table(out["by_group"])


def _say_auto(data: Path, model, out: dict, as_json: bool) -> None:
    from ..evaluation import auto as auto_eval, report as eval_report

    result = out["result"]
    if as_json:
        print(json.dumps({"data": str(data), "protocol": "auto", "critic": str(out["critic"]), "fixed": model.ref,
                          "corrected": out["corrected"],
                          **{k: v for k, v in result.items() if k not in ("pairs", "starts")}}))
    else:
        print(auto_eval.markdown(result) + "\n\nThe same starts, then the model's correction (against the true "
              "placement):\n\n" + eval_report.photo_markdown(out["corrected"]))


def _say_harmonize(folder: Path, result: dict, as_json: bool) -> None:
    from ..evaluation import harmonize as harmonize_eval

    if as_json:
        print(json.dumps({"model": str(folder), **result}))
    else:
        print(harmonize_eval.markdown(result))
