"""The evaluations ``stgan eval`` runs, one per kind of data, each returning what the command
reports: generated pairs and glasses (:func:`generated`), real photos (:func:`photos`), automatic
placement (:func:`auto`) and harmonization (:func:`harmonize`).

``track(label, total)`` is a context manager that yields ``advance(count)`` (the command's progress
bar); ``log(line)`` speaks to the user."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import StganError, UsageError


def _trained_perturbation(model, homography, translation) -> tuple[float, float]:
    """The sl(3) std of every parameter and the extra translation std: given, else the model's training ones."""
    trained = model.config.trained_perturbation
    return (homography if homography is not None else trained[0], translation if translation is not None else trained[1])


def check_iterations(opened, iterations: int | None) -> None:
    for m in opened:
        if iterations is not None and iterations > m.config.warps:
            raise UsageError(f"--iterations {iterations}: {m.ref} has {m.config.warps} generators")


def generated(opened, data: Path, *, n, seed, protocol, homography, translation, iterations, trust, dev,
              report, track, log) -> dict:
    """Generated pairs or a glasses folder: every model from the same perturbed starts, measured after
    each iteration.  Returns ``summaries`` (per model), ``results`` and what all share (``common``)."""
    import torch

    from . import glasses as G, report as eval_report
    from .synthetic import evaluate_batches
    from ..core.perturb import warp_noise
    from ..core.trust_region import parse as parse_trust
    from ..data.datasets import open_eval_set

    check_iterations(opened, iterations)
    cfg = opened[0].config
    for other in opened[1:]:
        if tuple(other.config.image_size) != tuple(cfg.image_size):
            raise StganError(f"{other.ref}: works at {other.config.image_size}, {opened[0].ref} at {cfg.image_size}; "
                             "errors in pixels are only comparable at one size")
    std_h, std_t = _trained_perturbation(opened[0], homography, translation)
    glasses = cfg.domain == "glasses" and (Path(data) / "real").is_dir()  # a `stgan data glasses` folder
    protocol = protocol or "sl3"
    allowed = ("sl3", "truth", "detector") if glasses else ("sl3", "truth")
    if protocol not in allowed:
        raise UsageError(f"--protocol {protocol}: expected one of {', '.join(allowed)} for {data}")
    ds = open_eval_set(data, cfg.image_size, glasses=glasses)
    eyes = None
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
        idx, p0 = G.detector_starts(ds, data, cfg.image_size, n)
    iod = G.eye_distances(ds, idx) if glasses else None
    face_eyes = G.face_eyes(ds, idx) if glasses else None
    diagonal = float(np.hypot(*cfg.image_size))
    summaries, results = [], []
    for label, loaded in zip(eval_report.labels([m.ref for m in opened]), opened):
        k = iterations if iterations is not None else loaded.config.iterations
        log(f"{loaded.ref}: {k} iterations on {len(idx)} samples of {data}")
        with track(loaded.ref, len(idx)) as advance:
            result = evaluate_batches(loaded.net.to(dev), ds, idx, p0, cfg.image_size, dev,
                                      keep_images=report is not None, eyes=eyes, eye_distance=iod,
                                      limits=parse_trust(trust, loaded.trust_limits()), iterations=k,
                                      on_batch=advance, face_eyes=face_eyes)
        result["means"]["corner_error_pct"] = [round(100 * c / diagonal, 3) for c in result["means"]["corner_error"]]
        summaries.append({"model": loaded.ref, "label": label, "warps": k, **result["means"]})
        if "lens_error" in result["medians"]:
            summaries[-1]["lens_error_median"] = result["medians"]["lens_error"]
        results.append((result, k))
        if report is not None:
            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            eval_report.images(result, folder)
            if glasses and eval_report.sketches(result, G.pick_landmarks(ds, result["picks"]), folder):
                log(f"{folder}/sketch.png: the same cases drawn from the faces' landmarks, without their pixels")
            log(f"report written to {folder}")
    common = {"data": str(data), "n": len(idx), "seed": seed, "protocol": protocol,
              "perturbation": {"homography": std_h, "translation": std_t} if protocol == "sl3" else None}
    return {"summaries": summaries, "results": results, "common": common}


def photos(opened, data: Path, *, n, seed, protocol, box_std, homography, translation, dev, report, trust,
           iterations, decoys, track, log) -> dict:
    """Real photos at full resolution: every model from the same starting placements.  Returns the
    rows (identity first), their breakdown by size and source, and what they share (``common``)."""
    from . import photos as photo_eval, report as eval_report
    from ..core.trust_region import parse as parse_trust

    check_iterations(opened, iterations)
    cases = photo_eval.load_cases(data)
    cases = [cases[i] for i in np.resize(np.arange(len(cases)), n or len(cases))]
    sl3 = _trained_perturbation(opened[0], homography, translation)
    inits = photo_eval.initial_placements(cases, protocol, np.random.default_rng(seed), box_std, sl3)
    if decoys:
        cases = photo_eval.with_decoys(cases, inits)
    rows = [{"label": "identity", "model": None, "warps": 0, **photo_eval.summarise(cases, [[m] for m in inits])}]
    for label, loaded in zip(eval_report.labels([m.ref for m in opened]), opened):
        net = loaded.net.to(dev)
        k = iterations if iterations is not None else loaded.config.iterations
        log(f"{loaded.ref}: {k} iterations on {len(cases)} photo pairs of {data}")
        with track(loaded.ref, len(cases)) as advance:
            homs = photo_eval.predict(net, cases, inits, loaded.config.image_size, dev,
                                      limits=parse_trust(trust, loaded.trust_limits()), iterations=k,
                                      on_batch=advance, detail_size=loaded.config.detail_size)
        row = {"label": label, "model": loaded.ref, "warps": k, **photo_eval.summarise(cases, homs)}
        rows.append(row)
        if report is not None:
            folder = report if len(opened) == 1 else report / label.replace("/", "-")
            photo_eval.report(folder, cases, homs, row, label)
            log(f"report written to {folder}")
    common = {"data": str(data), "n": len(cases), "seed": seed, "protocol": protocol, "trust_region": trust,
              "decoys": decoys, "box_std": box_std if protocol == "box" else None,
              "perturbation": {"homography": sl3[0], "translation": sl3[1]} if protocol == "sl3" else None}
    return {"common": common, "models": [{k: v for k, v in r.items() if k != "per_case_pct"} for r in rows],
            "by_group": photo_eval.breakdown(cases, rows)}


def auto(model, data: Path, *, critic, seed, dev, trust, track, log) -> dict:
    """Where the critic puts each object with no box, against the model's fixed spot; then the
    model's correction of both starts, as ``composite`` runs it."""
    from . import auto as auto_eval, photos as photo_eval
    from ..composite import auto as placing
    from ..core.trust_region import parse as parse_trust

    folder = placing.critic_folder(critic)
    placement = model.config.placement
    log(f"critic {folder} on the photo pairs of {data}; fixed spot: {model.ref}'s "
        f"(centre {tuple(placement.center)}, width {placement.scale})")
    cases = photo_eval.load_cases(data)
    with track("critic", len(cases)) as advance:
        result = auto_eval.evaluate(folder, cases, data, placement.center, placement.scale, seed,
                                    on_case=lambda: advance(1))
    rows = []
    for start, label in (("critic", "the critic's box"), ("fixed", "the fixed spot")):
        inits = result["starts"][start]
        rows.append({"name": f"{label}, no correction", "model": None, **photo_eval.summarise(cases, [[m] for m in inits])})
        homs = photo_eval.predict(model.net.to(dev), cases, inits, model.config.image_size, dev,
                                  limits=parse_trust(trust, model.trust_limits()), iterations=model.config.iterations,
                                  detail_size=model.config.detail_size)
        rows.append({"name": f"{label}, {model.ref} ({model.config.iterations} G)", "model": model.ref,
                     "label": model.ref, **photo_eval.summarise(cases, homs)})
    return {"critic": folder, "result": result,
            "corrected": [{k: v for k, v in r.items() if k != "per_case_pct"} for r in rows]}


def harmonizer_folder(ref: str, data: Path, offline: bool) -> Path | None:
    """The model folder of ``ref`` when it is a harmonizer, or when ``data`` is a harmonization split."""
    from ..data.harmonize import is_harmonize_dataset
    from ..model import modelstore
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


def harmonize(folder: Path, data: Path, *, report, track, log) -> dict:
    """A harmonizer on held-out recoloured photos, against the composite and the statistics transfer."""
    from . import harmonize as harmonize_eval
    from ..data.harmonize import read_rows
    from ..model.harmonizer_run import open_harmonizer

    harmonizer, note = open_harmonizer(folder)
    if note:
        log(note)
    total = len(read_rows(data))
    log(f"harmonizer {folder} on the {total} pairs of {data}")
    with track("harmonizing", total) as advance:
        result = harmonize_eval.evaluate(data, harmonizer, report, on_pair=lambda: advance(1))
    if "picture" in result:
        log(f"worst / median / best pairs: {result['picture']}")
    return result
