"""A composite job from the command line's arguments: the items its FG/BG/--out name, the shard of
them this process takes, the model that runs them, and the outputs claimed before any work (so that
a batch never replaces a file it was not told to)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from . import inputs
from .inputs import Item
from .job import Options
from .outputs import written as files_of


@dataclass
class Plan:
    items: list[Item]  # what this process composites
    skipped: list[Item]  # outputs that exist, left as they are (--skip-existing)
    batch: bool  # the arguments named many inputs (a folder or a glob)
    model: object | None  # the opened model (stgan_cli.model.modelstore.LoadedModel); None with --iterations 0
    iterations: int  # generators each item runs through
    notes: list[str] = field(default_factory=list)  # for the user: inputs passed over, the shard taken


def plan(fg: str, bg: str, out: str, mask: str | None, opts: Options, *, cross: bool = False, fmt: str = "png",
         shard_spec: str | None = None, overwrite: bool = False, skip_existing: bool = False,
         model_ref: str | None = None, offline: bool = False, ray: bool = False, device: str = "auto") -> Plan:
    from ..model import modelstore

    if skip_existing and overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other")
    shard = inputs.parse_shard(shard_spec) if shard_spec else None
    items, batch, warnings = inputs.plan(fg, bg, out, mask, cross, fmt)
    notes = [f"warning: {w}" for w in warnings]
    if shard:
        if not batch and shard[1] > 1:
            raise UsageError(f"--shard {shard_spec}: one image cannot be split; --shard is for folders")
        total = len(items)
        items = inputs.shard(items, *shard)
        notes.append(f"shard {shard[0]}/{shard[1]}: {len(items)} of {total} items")
    if ray and not batch:
        raise UsageError("--ray is for batches (a folder or glob of inputs); one image runs here")
    loaded = None
    if opts.iterations != 0 or model_ref is not None:
        loaded = modelstore.open_model(model_ref, offline)
        if opts.iterations is not None and opts.iterations > loaded.config.warps:
            raise UsageError(f"--iterations {opts.iterations}: the model has {loaded.config.warps} generators")
    if opts.engine == "onnx" and device.strip().lower() not in ("auto", "cpu"):
        raise UsageError(f"--engine onnx --device {device}: the onnx engine runs on the CPU; use --engine torch "
                         "for a GPU")
    k = 0 if loaded is None else (loaded.config.iterations if opts.iterations is None else opts.iterations)

    def written(it):
        return files_of(it.out, opts.save_mask, opts.save_warp, opts.steps_dir, k, opts.top_k, opts.heatmap)

    if opts.steps_dir is not None and opts.steps_dir.exists() and not opts.steps_dir.is_dir():
        raise UsageError(f"--steps {opts.steps_dir}: is a file; --steps names a folder")
    inputs.check_outputs(items, written, opts.init)
    items, skipped = inputs.claim_outputs(items, out, batch, overwrite, skip_existing, written)
    return Plan(items, skipped, batch, loaded, k, notes)
