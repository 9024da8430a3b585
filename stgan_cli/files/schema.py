"""The one schema of the project's YAML settings: a model folder's ``config.yaml`` and a training
config are dataclasses whose fields each declare what they accept (``field(metadata=accepts(...))``).
:func:`merge` lays a parsed mapping over such an object, section by section, and refuses an unknown
key (with the likely one), a wrong type or a value out of range in one line naming the key.

Only plain Python here: reading YAML is :mod:`stgan_cli.files.yamlio`'s, and what several settings
must agree on is checked by the config that holds them."""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import StganError, suggest


@dataclass(frozen=True)
class Rule:
    what: str  # what the setting must be, as the error says it: "a whole number >= 1"
    convert: Callable[[Any], Any]  # the value as stored; raises ValueError when it is not acceptable

    def __call__(self, value):
        return self.convert(value)


def accepts(rule: Rule) -> dict:
    """The ``metadata`` of a dataclass field that ``rule`` checks."""
    return {"rule": rule}


def _finite(value) -> float:
    """A number: an int or float, or text that reads as one (YAML reads ``1e-5`` as text)."""
    if isinstance(value, bool):
        raise ValueError
    number = float(value) if isinstance(value, (int, float, str)) else None
    if number is None or not math.isfinite(number):
        raise ValueError
    return number


def number(lo: float | None = None, hi: float | None = None, above: float | None = None, below: float | None = None,
           whole: bool = False, optional: bool = False, what: str | None = None) -> Rule:
    """A finite number in ``[lo, hi]`` (and ``> above``, ``< below``); ``whole``: an integer."""
    if what is None:
        bounds = []
        if lo is not None and hi is not None:
            bounds.append(f"from {lo:g} to {hi:g}")
        elif lo is not None or hi is not None:
            bounds.append(f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        if above is not None:
            bounds.append(f"above {above:g}")
        if below is not None:
            bounds.append(f"below {below:g}")
        what = " ".join(["a whole number" if whole else "a finite number"] + bounds)

    def convert(value):
        if value is None and optional:
            return None
        v = _finite(value)
        if (whole and not v.is_integer()) or (lo is not None and v < lo) or (hi is not None and v > hi) \
                or (above is not None and not v > above) or (below is not None and not v < below):
            raise ValueError
        return int(v) if whole else v

    return Rule(what + (", or null" if optional else ""), convert)


def flag() -> Rule:
    def convert(value):
        if not isinstance(value, bool):
            raise ValueError
        return value

    return Rule("true or false", convert)


def text(choices: tuple[str, ...] | None = None, optional: bool = False, what: str | None = None) -> Rule:
    def convert(value):
        if value is None and optional:
            return None
        if not isinstance(value, str) or (choices is not None and value not in choices):
            raise ValueError
        return value

    if what is None:
        what = "text" if choices is None else " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
    return Rule(what + (", or null" if optional else ""), convert)


def sequence(item: Rule, length: int | None = None, kind: Callable = tuple, what: str | None = None) -> Rule:
    """A list of ``length`` values (any length when None), each accepted by ``item``."""
    def convert(value):
        if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
            raise ValueError
        return kind(item(v) for v in value)

    count = f"{length} values" if length is not None else "a list"
    return Rule(what or f"{count}, each {item.what}", convert)


def mapping(keys: tuple[str, ...] | None = None, value: Rule | None = None, optional: bool = False,
            what: str = "a mapping") -> Rule:
    """A mapping (of ``keys`` only, each value accepted by ``value``, when given); None: an empty one
    unless ``optional``."""
    def convert(v):
        if v is None:
            return None if optional else {}
        if not isinstance(v, dict) or (keys is not None and not set(v) <= set(keys)):
            raise ValueError
        return v if value is None else {k: value(x) for k, x in v.items()}

    return Rule(what, convert)


def anything() -> Rule:
    return Rule("anything", lambda v: v)


@functools.lru_cache(maxsize=None)
def rules(cls) -> dict[str, Rule]:
    """Each field's rule: the one it declares, else its type's (a number is then >= 0, as most
    settings are: rates, counts, stds)."""
    hints = typing.get_type_hints(cls)
    return {f.name: f.metadata.get("rule") or _of_type(hints[f.name]) for f in dataclasses.fields(cls)
            if not dataclasses.is_dataclass(hints[f.name])}


def _of_type(tp) -> Rule:
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if args and optional else tp
    if base is bool:
        return flag()
    if base in (int, float):
        return number(lo=0, whole=base is int, optional=optional)
    if base is str:
        return text(optional=optional)
    if typing.get_origin(base) is list or base is list:
        return sequence(anything(), kind=list, what="a list")
    if typing.get_origin(base) is dict or base is dict:
        return mapping(optional=optional)
    raise TypeError(f"no rule for {tp}")  # a programming error: declare one


def merge(obj, data, source: str, prefix: str = "", error: type[Exception] = StganError) -> None:
    """Lay ``data`` (a parsed mapping) over the dataclass ``obj`` in place: nested dataclasses
    section by section, every other field through its rule.  Errors name ``source`` and the key."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the file"
        raise error(f"{source}: {where} must be a mapping of settings, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise error(f"{source}: unknown key '{prefix}{key}'{suggest(str(key), fields)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            merge(current, {} if value is None else value, source, f"{prefix}{key}.", error)
            continue
        rule = rules(type(obj))[key]
        try:
            setattr(obj, key, rule(value))
        except (TypeError, ValueError, OverflowError):
            raise error(f"{source}: {prefix}{key} must be {rule.what}, not {value!r}") from None
