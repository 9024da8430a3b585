"""Warp predictors, by name: ``model.arch`` in a config picks one (``paper`` unless told otherwise).

An architecture is a module that registers itself here with :func:`register`.  It is the whole
"generator" part of an ST-GAN model (``STGAN.generators``) and answers one question,
``update(i, bg, fg, warped, p) -> dp``: the i-th correction of the warp parameters ``p``, in the
paper's sl(3) order, given the background, the foreground canvas at its starting pose and the
canvas as currently warped.  The iterative loop, the discriminator, the trust region, export and
the full-resolution transfer are shared by every architecture (:mod:`stgan_cli.model.nets`).
"""

from __future__ import annotations

from ..errors import StganError, suggest

_REGISTRY: dict[str, type] = {}
DEFAULT = "paper"


def register(name: str):
    def add(cls):
        cls.arch_name = name
        _REGISTRY[name] = cls
        return cls
    return add


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str) -> type:
    _load_builtin()
    if name not in _REGISTRY:
        raise StganError(f"unknown architecture '{name}' (known: {', '.join(names())}){suggest(name, _REGISTRY)}")
    return _REGISTRY[name]


def reads_detail(name: str) -> bool:
    """Whether architecture ``name`` reads its window at ``model.detail`` times the frame."""
    return bool(getattr(get(name), "reads_detail", False))


def build(name: str, warps: int, image_size):
    return get(name)(warps, tuple(image_size))


def _load_builtin() -> None:
    from . import crop, lite, paper, refiner  # noqa: F401  (registration is their import's side effect)
