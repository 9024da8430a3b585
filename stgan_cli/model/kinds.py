"""Model folders that hold something other than generators (``kind:`` in their ``config.yaml``): the
placement critic and the harmonizer.  Reading a folder of another kind is refused in one line."""

from __future__ import annotations

from pathlib import Path


def read_config(folder: Path, kind: str, what: str) -> dict:
    """``folder``'s ``config.yaml`` when its ``kind`` is ``kind``; else one line saying it is not ``what``."""
    from ..errors import StganError
    from ..yamlio import read_yaml

    data = read_yaml(Path(folder) / "config.yaml")
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise StganError(f"{folder}: not {what} (its config.yaml has no kind: {kind})")
    return data


def is_kind(folder: Path, kind: str) -> bool:
    from ..errors import StganError

    try:
        read_config(folder, kind, kind)
    except StganError:
        return False
    return True
