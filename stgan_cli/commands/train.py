"""``stgan train`` (the whole schedule) and ``stgan refine`` (end-to-end fine-tuning of a model)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import check_device_name, friendly_errors, log, resolve_device
from .options import RunDeviceOpt, SetOpt


def _progress_printer(enabled: bool):
    """A one-line live status on a terminal; plain log lines otherwise."""
    if enabled:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        live = Live(console=console, transient=True, refresh_per_second=4)
        live.start()
    else:
        live = None

    def show(row: dict, total: int, rate: float, stage_end: int):
        losses = "  ".join(f"{k} {row[k]:.4g}" for k in ("loss_sup", "loss_d", "loss_g", "wdist", "gp") if k in row)
        eta = (stage_end - row["step"]) / max(rate, 1e-9)
        line = (f"{row['stage']:<10} step {row['step']}/{total}  {losses}  {rate:.2f} it/s  "
                f"stage ETA {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}")
        if live is not None:
            live.update(line)
        else:
            log(line)

    def stop():
        if live is not None:
            live.stop()

    return show, stop


def _run(cfg, out: Path, resume: bool, init_model: Path | None = None, stop_after: int | None = None) -> Path | None:
    from ..training.trainer import Trainer

    device = resolve_device(cfg.run.device)
    show, stop = _progress_printer(sys.stderr.isatty())
    try:
        trainer = Trainer(cfg, out, device, resume=resume, init_model=init_model, log=log, progress=show)
        if trainer.dist.main:
            stages = ", ".join(f"{s.name} {s.steps}" for s in trainer.stages)
            log(f"training on {device} ({trainer.dist.world} process{'es' if trainer.dist.world > 1 else ''}): {stages}")
        folder = trainer.run(stop_after)
    finally:
        stop()
    return folder


@friendly_errors
def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see configs/).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder (sets data.path).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder to create.")] = None,
    overrides: SetOpt = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this folder.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sets run.seed.")] = None,
    device: RunDeviceOpt = None,
    stop_after: Annotated[Optional[int], typer.Option(
        "--stop-after", help="Stop at this global step (checkpointed); continue later with --resume.", min=1)] = None,
):
    """Train a model with the paper's schedule; the result is RUN_DIR/model/."""
    from ..errors import StganError
    from ..training import config as config_mod

    kind, kind_cfg = _kind_config(resume / "config.yaml" if resume is not None else config)
    if kind == "placement-critic" and resume is None:
        return _train_critic(kind_cfg, data, out, overrides, seed)
    if kind == "harmonizer":
        return _train_harmonizer(kind_cfg, data, out, resume, overrides, seed, stop_after, config)
    sets = list(overrides or [])
    if data is not None:
        sets.append(f"data.path={data}")
    if seed is not None:
        sets.append(f"run.seed={seed}")
    if device is not None:
        check_device_name(device)
        sets.append(f"run.device={device}")
    out = _run_folder(out, resume, config is not None)
    if resume is not None:
        if not (resume / "config.yaml").exists():
            raise StganError(f"{resume}: not a run folder (no config.yaml)")
        cfg = config_mod.load(resume / "config.yaml", sets)
    else:
        cfg = config_mod.load(config, sets)
    folder = _run(cfg, out, resume is not None, stop_after=stop_after)
    if folder is not None:
        log(f"model written to {folder}")
        print(folder)


def _run_folder(out: Path | None, resume: Path | None, configured: bool) -> Path:
    """The run folder: ``--resume``'s (which takes its own config: ``configured`` is refused), or a
    new ``--out`` that holds no run yet."""
    from ..errors import StganError, UsageError

    if resume is not None:
        if configured or (out is not None and out != resume):
            raise UsageError("--resume takes the run folder's own config: drop --config/--data/--out")
        return resume
    if out is None:
        raise UsageError("--out RUN_DIR is required (or --resume RUN_DIR)")
    if (out / "checkpoint.pt").exists():
        raise StganError(f"{out}: already holds a run; continue it with --resume {out} or choose another --out")
    return out


def _kind_config(path: Path | None) -> tuple[str | None, dict | None]:
    """(kind, config) of the YAML at ``path`` when it trains something other than generators
    (``kind: placement-critic`` or ``kind: harmonizer``); (None, None) otherwise."""
    from ..model import critic_run, harmonizer_run
    from ..files.yamlio import read_yaml

    if path is None or not Path(path).is_file():
        return None, None
    data = read_yaml(path)
    kind = data.get("kind") if isinstance(data, dict) else None
    return (kind, data) if kind in (critic_run.KIND, harmonizer_run.KIND) else (None, None)


def _train_harmonizer(cfg: dict, data: Path | None, out: Path | None, resume: Path | None, overrides, seed,
                      stop_after, config: Path | None) -> None:
    """``stgan train --config configs/harmonize.yaml``: the harmonizer of ``composite --harmonize``;
    checkpointed, so ``--resume RUN_DIR`` continues it."""
    from ..errors import UsageError
    from ..training.harmonize import train as train_harmonizer

    if overrides:
        raise UsageError("--set is not taken by a harmonizer's config: edit the YAML")
    out = _run_folder(out, resume, config is not None or data is not None)
    if resume is None:
        if data is not None:
            cfg["data"] = str(data)
        if seed is not None:
            cfg["seed"] = seed
    folder = train_harmonizer(cfg, out, log=log, resume=resume is not None, stop_after=stop_after)
    if folder is not None:
        log(f"harmonizer written to {folder}")
        print(folder)


def _train_critic(cfg: dict, data: Path | None, out: Path | None, overrides, seed: int | None) -> None:
    """``stgan train --config configs/placement.yaml``: the placement critic of ``--place auto``.  It
    trains in minutes (the backbone is frozen; its features are computed once), so a stopped run
    starts again rather than resuming."""
    from ..errors import UsageError
    from ..training.critic import train as train_critic

    if out is None:
        raise UsageError("--out RUN_DIR is required")
    if overrides:
        raise UsageError("--set is not taken by a placement critic's config: edit the YAML")
    if data is not None:
        cfg["data"]["sets"] = [{"path": str(data), "holes": True}]
    if seed is not None:
        cfg["seed"] = seed
    folder = train_critic(cfg, out, log=log)
    log(f"critic written to {folder}")
    print(folder)


@friendly_errors
def refine(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model to fine-tune (name or folder).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder to adapt to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New model folder to write.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config for the optimiser and data.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="End-to-end steps.", min=1)] = 500,
    overrides: SetOpt = None,
    device: RunDeviceOpt = None,
):
    """Fine-tune all generators of MODEL together (the paper's last stage) on DATA; writes a new model."""
    import dataclasses
    import shutil

    from ..model import modelstore
    from ..errors import StganError
    from ..training import config as config_mod

    source = modelstore.resolve(model)
    mc = modelstore.read_config(source)
    sets = [f"data.path={data}", "stages.pretrain=0", "stages.d_pretrain=0", "stages.warp=0",
            f"stages.end_to_end={steps}", *(overrides or [])]
    if device is not None:
        check_device_name(device)
        sets.append(f"run.device={device}")
    # The model section is the source model's own config (one schema); --set may still change it.
    source_model = dataclasses.replace(mc, name=f"{mc.name}-refined", provenance={})
    cfg = config_mod.load(config, sets, model=source_model)
    if out.exists() and any(out.iterdir()):
        raise StganError(f"{out}: exists and is not empty")
    run_dir = out.with_name(out.name + ".run")
    folder = _run(cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), init_model=source)
    if folder is not None:
        out.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            shutil.copy2(f, out / f.name)
        log(f"refined model written to {out} (run folder {run_dir})")
        print(out)
