"""A composite batch spread over a Ray cluster (``stgan composite ... --ray ADDRESS``), with the
per-item code of a local batch.

Items go to Ray Data in chunks of ``--batch-size``; each worker is an actor that opens the model
once and runs its chunks through :class:`stgan_cli.composite.pipeline.Compositor`, exactly as a local run
does, writing the outputs itself (so every worker must see the input and output folders: a shared
file system, or one machine).  Results come back in the order of the items and are reported by the
caller as a local batch reports them.  Outputs already claimed (``--skip-existing``,
``--overwrite``, the check for outputs that exist) are settled by the caller before anything is
sent.  Ray is the optional ``ray`` extra: ``pip install 'stgan-cli[ray]'``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..errors import StganError
from .inputs import Item


def _row(item: Item) -> dict:
    return {"fg": str(item.fg), "bg": str(item.bg), "out": str(item.out), "mask": str(item.mask or "")}


def _item(row) -> Item:
    mask = str(row["mask"])
    return Item(Path(str(row["fg"])), Path(str(row["bg"])), Path(str(row["out"])), Path(mask) if mask else None)


class _Worker:
    """A Ray Data actor: one model, every chunk it is given."""

    def __init__(self, model_ref: str | None, offline: bool, options: dict):
        from ..model import modelstore
        from .job import Options
        from .pipeline import Compositor

        model = modelstore.open_model(model_ref, offline) if model_ref is not None or options["iterations"] != 0 else None
        opts = Options(**{k: (Path(v) if k in ("init", "steps_dir") and v is not None else v) for k, v in options.items()})
        self.compositor = Compositor(model, opts)

    def __call__(self, batch: dict) -> dict:
        items = [_item({k: batch[k][i] for k in batch}) for i in range(len(batch["fg"]))]
        results = self.compositor.run(items, workers=2)
        return {"result": [json.dumps(r.to_json()) for r in results]}


def connect(address: str):
    """``local``: a Ray instance of this machine's cores, started here; else the cluster at
    ``address`` (``auto``, ``ray://HOST:PORT``)."""
    try:
        import ray
    except ImportError:
        raise StganError("--ray needs Ray: pip install 'stgan-cli[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise StganError(f"--ray {address}: cannot reach a Ray cluster ({str(exc).splitlines()[0]})") from None
    return ray


def run(items: list[Item], model_ref: str | None, offline: bool, options, address: str = "local",
        on_result=None, actors: int | None = None):
    """Composite ``items`` on Ray; ``on_result(result)`` as each result arrives, in the items' order.
    Returns the :class:`~stgan_cli.composite.job.Result` list, as :meth:`Compositor.run` does."""
    from .job import Result

    if not items:
        return []
    ray = connect(address)
    import ray.data

    import logging
    import os

    if os.environ.get("STGAN_DEBUG") != "1":  # Ray Data's own INFO/WARNING lines: our summary says what happened
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # results in the items' order, as a local batch reports them
    ctx.enable_progress_bars = False
    size = max(1, options.batch_size)
    if actors is None:
        actors = max(1, min(int(ray.available_resources().get("CPU", 1)) // 2, -(-len(items) // size)))
    ds = ray.data.from_items([_row(it) for it in items], override_num_blocks=max(1, -(-len(items) // size)))
    # An actor pool of a fixed size (``concurrency=`` is deprecated since Ray 2.51), and no restarts:
    # a worker that dies fails its chunk, which the batch reports, rather than being rebuilt.
    # (Ray 2.60 names no parameter for max_restarts and warns about the catch-all that carries it.)
    pool = ray.data.ActorPoolStrategy(size=actors)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        out = ds.map_batches(_Worker, fn_constructor_kwargs={"model_ref": model_ref, "offline": offline,
                                                            "options": asdict(options)},
                             batch_size=size, compute=pool, num_cpus=2 if actors == 1 else 1,
                             batch_format="numpy", max_restarts=0)
    by_out = {str(it.out): it for it in items}
    results = []
    for row in out.iter_rows():
        data = json.loads(row["result"])
        res = Result(by_out[data["output"]], data["status"], error=data.get("error"),
                     homography=data.get("homography"), clamped=data.get("clamped", False),
                     notes=data.get("notes", []))
        results.append(res)
        if on_result:
            on_result(res)
    return results
