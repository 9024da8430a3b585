"""``stgan composite FG BG --out OUT``: place, correct with ST-GAN, and composite at full resolution."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (check_device_name, friendly_errors, log, parse_numbers, progress_bar,
                      resolve_device)
from .options import DEFAULT_MAX_PIXELS, DeviceOpt, ModelOpt, OfflineOpt


@friendly_errors
def composite(
    fg: Annotated[str, typer.Argument(metavar="FG", help="Foreground: RGBA cut-out (or RGB with --mask); a file, folder or quoted glob.")],
    bg: Annotated[str, typer.Argument(metavar="BG", help="Background photo; a file, folder or quoted glob.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output image, or output folder for many inputs.")],
    mask: Annotated[Optional[str], typer.Option(
        "--mask", help="Mask for an RGB foreground (1- or 3-channel, soft or binary); a folder pairs by name.")] = None,
    model: ModelOpt = None,
    box: Annotated[Optional[str], typer.Option(
        "--box", help="Initial target box X1,Y1,X2,Y2 in background pixels; the object is fitted inside.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Initial centre CX,CY in background pixels.")] = None,
    scale: Annotated[Optional[float], typer.Option(
        "--scale", help="Initial object width as a fraction of the background width.")] = None,
    init: Annotated[Optional[Path], typer.Option(
        "--init", help="Start from a previous result's warp file (written by --save-warp).")] = None,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-k", help="Use the first K generators (0: initial placement only, no model needed). "
                                   "Default: the model's default_iterations.")] = None,
    save_warp: Annotated[bool, typer.Option("--save-warp", help="Write OUT.json with the homographies.")] = False,
    save_mask: Annotated[bool, typer.Option("--save-mask", help="Write OUT_mask.png, the object's mask.")] = False,
    steps: Annotated[Optional[Path], typer.Option(
        "--steps", help="Folder for the composite after each iteration and a strip of them all.")] = None,
    cross: Annotated[bool, typer.Option("--cross", help="With two folders: every foreground on every background.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="Output format for folders: png, jpg, webp, tif.")] = "png",
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Leave outputs that already exist.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist (batch).")] = False,
    shard_spec: Annotated[Optional[str], typer.Option(
        "--shard", metavar="K/N", help="Batch: only part K of N (K from 0), e.g. --shard $SLURM_ARRAY_TASK_ID/8 "
                                       "on each task of an array job.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per network pass.", min=1)] = 8,
    device: DeviceOpt = "auto",
    max_pixels: Annotated[int, typer.Option(
        "--max-pixels", help="Refuse images larger than this (decompression bombs).", min=1)] = DEFAULT_MAX_PIXELS,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item on stdout.")] = False,
    offline: OfflineOpt = False,
    place: Annotated[str, typer.Option(
        "--place", help="auto: with no --box/--at/--init, a glasses model finds faces and an indoor model lets the "
                        "placement critic choose the box | face (glasses on every detected face) | scene (the "
                        "model's fixed spot).")] = "auto",
    candidates: Annotated[int, typer.Option(
        "--candidates", help="--place auto: about this many boxes (positions x scales) scored.", min=1)] = 1000,
    top_k: Annotated[int, typer.Option(
        "--top-k", help="--place auto: also write the next K-1 best placements (OUT_top2.png ...), each corrected.",
        min=1)] = 1,
    heatmap: Annotated[bool, typer.Option(
        "--heatmap", help="--place auto: write OUT_heatmap.png, the critic's best score per position over the "
                          "photo.")] = False,
    critic: Annotated[Optional[str], typer.Option(
        "--critic", help="--place auto: the placement critic (model folder or name). Default: placement.")] = None,
    harmonize: Annotated[bool, typer.Option(
        "--harmonize", help="Match the object's colour and light to the photo: a harmonizer reads the composite "
                            "at 120x160 and the full-resolution cut-out goes through its colour transform.")] = False,
    harmonizer: Annotated[Optional[str], typer.Option(
        "--harmonizer", help="--harmonize: the harmonizer (model folder or name). Default: harmonize.")] = None,
    faces: Annotated[str, typer.Option("--faces", help="With face placement: all | largest.")] = "all",
    detector: Annotated[str, typer.Option(
        "--detector", help="Face placement: landmarks (dlib, the landmarks extra) | haar (OpenCV) | auto "
                           "(landmarks where installed). The sidecar says which ran.")] = "auto",
    skip_glasses_faces: Annotated[bool, typer.Option(
        "--skip-glasses-faces", help="Face placement: leave faces that already wear glasses (found by the "
                                     "landmarks detector) as they are.")] = False,
    trust: Annotated[str, typer.Option(
        "--trust-region", help="Limits on what the model may do to the object: default (from its training), off, "
                               "or KEY=VALUE pairs over the default, keys move, scale, rotate, shape: "
                               "e.g. move=0.3,scale=1.2 or rotate=5,shape=0.05.")] = "default",
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray", metavar="ADDRESS", help="Batch: spread the items over a Ray cluster (local: start one on this "
                                         "machine; auto; ray://HOST:PORT). Workers must see the input and output "
                                         "folders. Needs the ray extra.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="What runs the generators: auto (onnx where the model folder has model.onnx and "
                         "onnxruntime is installed, on the CPU; else torch) | torch | onnx. Said on stderr.")] = "auto",
):
    """Composite FG onto BG, its placement corrected by the model's generators."""
    from ..composite import batch as batches
    from ..composite.job import Options, Result
    from ..composite.pipeline import Compositor

    opts = Options(iterations=iterations, box=parse_numbers(box, 4, "--box") if box else None,
                   at=parse_numbers(at, 2, "--at") if at else None, scale=scale, init=init, save_warp=save_warp,
                   save_mask=save_mask, steps_dir=steps, max_pixels=max_pixels, batch_size=batch_size, place=place,
                   faces=faces, detector=detector, skip_glasses_faces=skip_glasses_faces, trust_region=trust,
                   engine=engine, candidates=candidates, top_k=top_k, heatmap=heatmap, critic=critic,
                   harmonize=harmonize or harmonizer is not None, harmonizer=harmonizer)
    opts.check()
    check_device_name(device)
    job = batches.plan(fg, bg, out, mask, opts, cross=cross, fmt=fmt, shard_spec=shard_spec, overwrite=overwrite,
                       skip_existing=skip_existing, model_ref=model, offline=offline,
                       ray=ray_address is not None, device=device)
    for note in job.notes:
        log(note)
    opts.exclusive = job.batch and not overwrite
    compositor = Compositor(job.model, opts, device, on_ready=lambda: _say_engine(compositor, engine),
                            resolve_device=resolve_device)
    emit = _emitter(as_json, job.batch)
    for it in job.skipped:
        emit(Result(it, "skipped"))
    if ray_address is not None:
        from ..composite import ray_batch

        log(f"ray: {len(job.items)} items on {ray_address}")
        results = ray_batch.run(job.items, model, offline, opts, ray_address, emit)
    else:
        results = _run_with_progress(compositor, job.items, emit, enabled=job.batch)
    _summary(results, job, out, as_json)


def _say_engine(compositor, engine: str) -> None:
    """Once the engine is open, while the first images decode: which model runs, and on what."""
    loaded = compositor.model
    if loaded is not None and compositor.engine is not None:
        h, w = loaded.config.image_size
        k = compositor.iterations
        used = f"{k} of {loaded.config.warps} warps" if k != loaded.config.warps else f"{k} warps"
        where = "onnxruntime on cpu" if compositor.engine.name == "onnx" else f"torch on {compositor.device}"
        log(f"model {loaded.ref} ({used} at {h}x{w}), {where}")
        if compositor.engine_note and engine == "auto":
            log(f"engine: torch, because {compositor.engine_note}")


def _emitter(as_json: bool, batch: bool):
    said = {"gone": False}

    def emit(res):
        if as_json:
            print(json.dumps(res.to_json()), flush=True)
            if getattr(sys.stdout, "reader_gone", False) and not said["gone"]:
                said["gone"] = True
                log("stdout was closed by its reader; the batch goes on, without its JSON lines")
        for note in res.notes:
            log(note)
        if res.status == "failed" and batch:
            log(f"failed: {res.error}")

    return emit


def _summary(results, job, out: str, as_json: bool) -> None:
    failed = [r for r in results if r.status == "failed"]
    clamped = sum(r.clamped for r in results)
    if not job.batch:
        if failed:
            from ._common import fail

            fail(failed[0].error)
        if clamped:
            log("the trust region shortened the model's correction (its limits are in --save-warp's sidecar; "
                "--trust-region off lifts them)")
        if not as_json:
            log(f"wrote {results[0].item.out}")
        return
    done = len(results) - len(failed)
    held = f" ({clamped} shortened by the trust region)" if clamped else ""
    log(f"{done} composited{held}, {len(job.skipped)} skipped, {len(failed)} failed -> {out}")
    if failed:
        raise typer.Exit(1)


def _run_with_progress(compositor, items, emit, enabled: bool):
    if not (enabled and sys.stderr.isatty()):  # no bar to draw: skip importing rich's machinery
        return compositor.run(items, emit)
    with progress_bar("compositing", enabled) as progress:
        task = progress.add_task("compositing", total=len(items))

        def on_result(res):
            emit(res)
            progress.advance(task)

        return compositor.run(items, on_result)
