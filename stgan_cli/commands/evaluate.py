"""``stgan eval MODEL --data DIR``: how much better placed the object is after each generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import StganError, UsageError
from ._common import finite_number, friendly_errors, log, progress_bar, resolve_device
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
    if _harmonizer(models[0], data, offline) is not None:
        return _evaluate_harmonize(models, data, as_json, markdown, report, offline)
    import numpy as np
    import torch

    from ..evaluation import report as eval_report

    from ..model import modelstore
    from ..data.datasets import open_eval_set
    from ..core.perturb import warp_noise
    from ..evaluation.synthetic import evaluate_batches

    from ..evaluation.photos import PROTOCOLS, is_photo_dataset
    from ..core.trust_region import Limits, parse as parse_trust

    parse_trust(trust, Limits())
    photos = is_photo_dataset(data)
    if protocol == "auto":
        if not photos:
            raise UsageError(f"--protocol auto: {data} is not a set of real photo pairs (stgan data from-photos)")
        return _evaluate_auto(modelstore.open_model(models[0], offline), data, critic, seed, as_json,
                              resolve_device(device), trust)
    if photos and (protocol or "box") not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS + ('auto',))}")
    dev = resolve_device(device)
    opened = [modelstore.open_model(m, offline) for m in models]
    if photos:
        return _evaluate_photos(opened, data, n, seed, protocol or "box", box_std, homography, translation, dev,
                                as_json, markdown, report, trust, iterations, decoys)
    if decoys:
        raise UsageError(f"--decoys: {data} is not a set of real photo pairs (stgan data from-photos)")
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
    glasses = cfg.domain == "glasses" and (Path(data) / "real").is_dir()  # a `stgan data glasses` folder
    protocol = protocol or "sl3"
    allowed = ("sl3", "truth", "detector") if glasses else ("sl3", "truth")
    if protocol not in allowed:
        raise UsageError(f"--protocol {protocol}: expected one of {', '.join(allowed)} for {data}")
    ds = open_eval_set(data, cfg.image_size, glasses=glasses)
    if glasses:
        from ..composite.faces import canonical_eyes

        eyes = torch.from_numpy(canonical_eyes(cfg.image_size)).float()
    if n is None:
        n = min(200, len(ds))
    elif n > len(ds):
        log(f"{data} holds {len(ds)} samples: each is used {n / len(ds):.1f} times on average to make --n {n}, "
            "with starts of its own")
    idx = np.resize(np.arange(len(ds)), n)
    p0 = torch.from_numpy(warp_noise(n, std_h, std_t, np.random.default_rng(seed))).float()
    if protocol == "truth":
        p0 = torch.zeros_like(p0)
    elif protocol == "detector":
        idx, p0 = _detector_starts(ds, data, cfg.image_size, n)
    iod = _eye_distances(ds, idx) if glasses else None
    face_eyes = _face_eyes(ds, idx) if glasses else None
    labels = eval_report.labels([m.ref for m in opened])
    diagonal = float(np.hypot(*cfg.image_size))
    summaries = []
    for label, loaded in zip(labels, opened):
        k = iterations if iterations is not None else loaded.config.iterations
        log(f"{loaded.ref}: {k} iterations on {len(idx)} samples of {data}")
        with progress_bar(loaded.ref) as bar:
            task = bar.add_task(loaded.ref, total=len(idx))
            result = evaluate_batches(loaded.net.to(dev), ds, idx, p0, cfg.image_size, dev,
                                      keep_images=report is not None, eyes=eyes, eye_distance=iod,
                                      limits=parse_trust(trust, loaded.trust_limits()), iterations=k,
                                      on_batch=lambda count: bar.advance(task, count), face_eyes=face_eyes)
        result["means"]["corner_error_pct"] = [round(100 * c / diagonal, 3) for c in result["means"]["corner_error"]]
        summaries.append({"model": loaded.ref, "label": label, "warps": k, **result["means"]})
        if "lens_error" in result["medians"]:
            summaries[-1]["lens_error_median"] = result["medians"]["lens_error"]
        if len(opened) == 1 and not (as_json or markdown):
            eval_report.table(result, k)
        if report is not None:
            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            eval_report.images(result, folder)
            if glasses and eval_report.sketches(result, _pick_landmarks(ds, result["picks"]), folder):
                log(f"{folder}/sketch.png: the same cases drawn from the faces' landmarks, without their pixels")
            log(f"report written to {folder}")
    common = {"data": str(data), "n": len(idx), "seed": seed, "protocol": protocol,
              "perturbation": {"homography": std_h, "translation": std_t} if protocol == "sl3" else None}
    if as_json:
        if len(opened) == 1:
            summary = summaries[0]
            print(json.dumps({"model": summary["model"], **common,
                              **{k: v for k, v in summary.items() if k not in ("model", "label", "warps")}}))
        else:
            print(json.dumps({**common, "models": summaries}))
    elif markdown:
        print(eval_report.markdown(summaries))
    elif len(opened) > 1:
        eval_report.comparison(summaries, n)


def _harmonizer(ref: str, data: Path, offline: bool) -> Path | None:
    """The model folder of ``ref`` when it is a harmonizer, or when ``data`` is a harmonization split."""
    from ..model import modelstore
    from ..data.harmonize import is_harmonize_dataset
    from ..model.harmonizer_run import is_harmonizer

    try:
        folder = modelstore.resolve(ref, offline)
    except StganError:
        folder = None
    if folder is not None and is_harmonizer(folder):
        return folder
    if is_harmonize_dataset(data):
        if folder is None:
            modelstore.resolve(ref, offline)  # says why, in one line
        raise UsageError(f"{data} holds harmonization pairs: evaluate a harmonizer on it (e.g. harmonize), not {ref}")
    return None


def _evaluate_harmonize(models: list[str], data: Path, as_json: bool, markdown: bool, report: Optional[Path],
                        offline: bool) -> None:
    """A harmonizer on held-out recoloured photos, against the composite and the statistics transfer."""
    from ..data.harmonize import read_rows
    from ..evaluation import harmonize as harmonize_eval
    from ..model.harmonizer_run import open_harmonizer

    if len(models) > 1:
        raise UsageError("a harmonizer is evaluated alone: give one MODEL")
    folder = _harmonizer(models[0], data, offline)
    harmonizer, note = open_harmonizer(folder)
    if note:
        log(note)
    total = len(read_rows(data))
    log(f"harmonizer {folder} on the {total} pairs of {data}")
    with progress_bar("harmonizing") as bar:
        task = bar.add_task("pairs", total=total)
        result = harmonize_eval.evaluate(data, harmonizer, report, on_pair=lambda: bar.advance(task, 1))
    if "picture" in result:
        log(f"worst / median / best pairs: {result['picture']}")
    if as_json:
        print(json.dumps({"model": str(folder), **result}))
    else:
        print(harmonize_eval.markdown(result))


def _evaluate_auto(model, data: Path, critic: Optional[str], seed: int, as_json: bool, dev: str, trust: str) -> None:
    """Where the critic puts each object with no box, against the model's fixed spot; then the
    model's correction of both starts, as ``composite`` runs it."""
    from ..evaluation import auto as auto_eval, photos as photo_eval, report as eval_report
    from ..composite import auto
    from ..core.trust_region import parse as parse_trust

    folder = auto.critic_folder(critic)
    placement = model.config.placement
    log(f"critic {folder} on the photo pairs of {data}; fixed spot: {model.ref}'s "
        f"(centre {tuple(placement.center)}, width {placement.scale})")
    cases = photo_eval.load_cases(data)
    with progress_bar("critic") as bar:
        task = bar.add_task("critic", total=len(cases))
        result = auto_eval.evaluate(folder, cases, data, placement.center, placement.scale, seed,
                                    on_case=lambda: bar.advance(task, 1))
    rows = []
    for start, label in (("critic", "the critic's box"), ("fixed", "the fixed spot")):
        inits = result["starts"][start]
        rows.append({"name": f"{label}, no correction", "model": None, **photo_eval.summarise(cases, [[m] for m in inits])})
        homs = photo_eval.predict(model.net.to(dev), cases, inits, model.config.image_size, dev,
                                  limits=parse_trust(trust, model.trust_limits()), iterations=model.config.iterations,
                                  detail_size=model.config.detail_size)
        rows.append({"name": f"{label}, {model.ref} ({model.config.iterations} G)", "model": model.ref,
                     "label": model.ref, **photo_eval.summarise(cases, homs)})
    public = [{k: v for k, v in r.items() if k != "per_case_pct"} for r in rows]
    if as_json:
        print(json.dumps({"data": str(data), "protocol": "auto", "critic": str(folder), "fixed": model.ref,
                          "corrected": public, **{k: v for k, v in result.items() if k not in ("pairs", "starts")}}))
    else:
        print(auto_eval.markdown(result) + "\n\nThe same starts, then the model's correction (against the true "
              "placement):\n\n" + eval_report.photo_markdown(public))


def _evaluate_photos(opened, data: Path, n: int, seed: int, protocol: str, box_std: float, homography, translation,
                     dev: str, as_json: bool, markdown: bool, report: Optional[Path], trust: str,
                     iterations: Optional[int], decoys: bool = False) -> None:
    """Real photos at full resolution: every model from the same starting placements."""
    import numpy as np

    _check_iterations(opened, iterations)
    from ..evaluation import photos as photo_eval, report as eval_report
    from ..core.trust_region import parse as parse_trust

    cases = photo_eval.load_cases(data)
    cases = [cases[i] for i in np.resize(np.arange(len(cases)), n or len(cases))]
    trained = (opened[0].config.provenance or {}).get("perturbation", {})
    sl3 = (homography if homography is not None else trained.get("homography", 0.1),
           translation if translation is not None else trained.get("translation", 0.1))
    inits = photo_eval.initial_placements(cases, protocol, np.random.default_rng(seed), box_std, sl3)
    if decoys:
        cases = photo_eval.with_decoys(cases, inits)
    rows = [{"label": "identity", "model": None, "warps": 0,
             **photo_eval.summarise(cases, [[m] for m in inits])}]
    labels = eval_report.labels([m.ref for m in opened])
    for label, loaded in zip(labels, opened):
        net = loaded.net.to(dev)
        k = iterations if iterations is not None else loaded.config.iterations
        log(f"{loaded.ref}: {k} iterations on {len(cases)} photo pairs of {data}")
        with progress_bar(loaded.ref) as bar:
            task = bar.add_task(loaded.ref, total=len(cases))
            homs = photo_eval.predict(net, cases, inits, loaded.config.image_size, dev,
                                      limits=parse_trust(trust, loaded.trust_limits()), iterations=k,
                                      on_batch=lambda count: bar.advance(task, count),
                                      detail_size=loaded.config.detail_size)
        row = {"label": label, "model": loaded.ref, "warps": k, **photo_eval.summarise(cases, homs)}
        rows.append(row)
        if report is not None:
            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            photo_eval.report(folder, cases, homs, row, label)
            log(f"report written to {folder}")
    common = {"data": str(data), "n": len(cases), "seed": seed, "protocol": protocol, "trust_region": trust,
              "decoys": decoys,
              "box_std": box_std if protocol == "box" else None,
              "perturbation": {"homography": sl3[0], "translation": sl3[1]} if protocol == "sl3" else None}
    public = [{k: v for k, v in r.items() if k != "per_case_pct"} for r in rows]
    by_group = photo_eval.breakdown(cases, rows)
    if as_json:
        print(json.dumps({**common, "models": public, "by_group": by_group}))
    elif markdown:
        print(eval_report.photo_markdown(public) + "\n\n" + eval_report.breakdown_markdown(by_group))
    else:
        eval_report.photo_table(public, common)
        eval_report.breakdown_table(by_group)


def _detector_starts(ds, data: Path, size, n: int):
    """Glasses placed where OpenCV's Haar detector puts the eyes, on the faces whose crops were aligned
    on landmarks (``meta.jsonl`` of ``stgan data glasses``): the indices of those faces (cycled to
    ``n``) and, per index, the warp that shows the canonical glasses where composite puts them on
    those eyes (:func:`stgan_cli.composite.landmarks.glasses_from_eyes`)."""
    import numpy as np
    import torch

    from ..core import frames
    from ..data.glasses import read_meta
    from ..composite.faces import canonical_eyes, similarity
    from ..composite.landmarks import glasses_from_eyes

    meta = read_meta(ds.data.root)
    usable = [i for i, name in enumerate(ds.data.bg_names or [])
              if meta.get(name, {}).get("haar_eyes") and meta[name].get("detector") == "landmarks"]
    if not usable:
        raise StganError(f"{data}: --protocol detector needs faces aligned on landmarks with Haar's eyes in "
                         "meta.jsonl (stgan data glasses with the landmarks extra installed)")
    idx = np.resize(np.array(usable), n)
    to_canon = frames.canon_from_pixel(size)
    eyes = canonical_eyes(size)
    p = []
    for i in idx:
        shown = similarity(eyes, glasses_from_eyes(np.array(meta[ds.data.bg_names[i]]["haar_eyes"])))
        p.append(frames.params_showing_similarity(to_canon @ shown @ np.linalg.inv(to_canon)))
    return idx, torch.from_numpy(np.array(p)).float()


def _meta_of(ds, indices, key: str) -> list:
    """Per index of a glasses folder, ``key`` of its face's ``meta.jsonl`` row, or None."""
    from ..data.glasses import read_meta

    meta = read_meta(ds.data.root)
    names = ds.data.bg_names or []
    return [meta.get(names[i], {}).get(key) if i < len(names) else None for i in indices]


def _eye_distances(ds, idx):
    """Per index, the face's eye distance in the frame (``eyes_in_crop``), or None where a folder
    predates it or a face lacks it: the crops are aligned on where the glasses belong, so the eyes
    are not always the canonical ones."""
    import numpy as np
    import torch

    rows = _meta_of(ds, idx, "eyes_in_crop")
    if not rows or any(r is None for r in rows):
        return None
    return torch.from_numpy(np.array([np.linalg.norm(np.subtract(*r)) for r in rows])).float()


def _face_eyes(ds, idx):
    """Per index, the face's own eye centres in the frame (``eyes_in_crop``, (N, 2, 2)), or None
    where a folder predates them."""
    import numpy as np
    import torch

    rows = _meta_of(ds, idx, "eyes_in_crop")
    if not rows or any(r is None for r in rows):
        return None
    return torch.from_numpy(np.array(rows, float)).float()


def _pick_landmarks(ds, picks: dict) -> dict:
    """Per pick of a glasses report, the face's landmarks in the frame, or None."""
    return dict(zip(picks, _meta_of(ds, picks.values(), "landmarks_in_crop")))


def _check_iterations(opened, iterations: Optional[int]) -> None:
    for m in opened:
        if iterations is not None and iterations > m.config.warps:
            raise UsageError(f"--iterations {iterations}: {m.ref} has {m.config.warps} generators")
