"""Reading YAML settings files (model and training configs) with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

from ..errors import StganError
from .smalltext import read_text

# A config holds tens of values; an "alias bomb" (anchors that each repeat the one before several
# times) parses in microseconds into a tree of billions of nodes that any later walk never finishes.
MAX_NODES = 100_000


def read_yaml(path: str | Path):
    """The parsed content of a YAML file; every way it can be unreadable is one :class:`StganError`."""
    import yaml

    path = Path(path)
    text = read_text(path, "config file (YAML)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StganError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise StganError(f"{path}: nested too deeply to be a config") from None
    try:
        size = expanded_size(data)
    except RecursionError:
        raise StganError(f"{path}: nested too deeply to be a config") from None
    if size > MAX_NODES:
        raise StganError(f"{path}: expands to over {MAX_NODES:,} values (repeated aliases); not a config")
    return data


def expanded_size(data, _memo=None) -> int:
    """How many values ``data`` holds once every shared (aliased) part is counted each time it
    appears; computed once per shared object, so a bomb costs no more than its file."""
    memo = {} if _memo is None else _memo
    if not isinstance(data, (dict, list)):
        return 1
    key = id(data)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle (a YAML node that contains itself) counts as too large
    items = list(data.values()) + list(data.keys()) if isinstance(data, dict) else data
    total = 1
    for item in items:
        total += expanded_size(item, memo)
        if total > MAX_NODES:
            break
    memo[key] = total
    return total
