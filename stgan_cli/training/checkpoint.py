"""Training checkpoints: model, optimisers, step, RNG states and config in one file, written atomically.

Checkpoints hold training state and are separate from models (model folders never contain pickles).
They are read with ``torch.load(weights_only=True)``: tensors and plain containers only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import StganError

FORMAT = 1
NAME = "checkpoint.pt"


def save(run_dir: Path, state: dict) -> Path:
    """Write ``run_dir/checkpoint.pt``; a crash mid-write leaves the previous checkpoint intact."""
    import torch

    from ..files import atomic

    path = Path(run_dir) / NAME
    for stale in Path(run_dir).glob(".checkpoint.*.part"):  # left by a process killed mid-write
        stale.unlink()
    with atomic.replacing(path) as tmp:  # a full disk: one line, and the previous checkpoint stays
        try:
            torch.save({"format": FORMAT, **state}, str(tmp))
        except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) this way
            free = shutil.disk_usage(run_dir).free
            raise StganError(f"{path}: cannot write the checkpoint ({free / 1e6:.1f} MB free on the device; "
                             f"{str(exc).splitlines()[0]}); the previous checkpoint is kept") from None
    return path


def load(run_dir: Path, architecture: dict) -> dict:
    """The checkpoint of ``run_dir``; refuses one made for a different architecture."""
    import torch

    path = Path(run_dir) / NAME
    if not path.exists():
        raise StganError(f"{run_dir}: no {NAME} to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise StganError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if state.get("format") != FORMAT:
        raise StganError(f"{path}: checkpoint format {state.get('format')} is not {FORMAT}")
    # Checkpoints from before the architecture registry hold the paper's generators.
    saved, wanted = ({"arch": "paper", **(a or {})} for a in (state.get("architecture"), architecture))
    if saved != wanted:
        raise StganError(f"{path}: was trained with {state.get('architecture')}, the config asks for "
                         f"{architecture}; resuming across an architecture change is refused")
    return state
