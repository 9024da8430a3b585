"""Warp predictors, by name: ``model.arch`` in a config picks one (``paper`` unless told otherwise).

An architecture is a class with an ``arch_name`` in one of this package's modules.  It is the whole
"generator" part of an ST-GAN model (``STGAN.generators``) and answers one question,
``update(i, bg, fg, warped, p) -> dp``: the i-th correction of the warp parameters ``p``, in the
paper's sl(3) order, given the background, the foreground canvas at its starting pose and the
canvas as currently warped.  The iterative loop, the discriminator, the trust region, export and
the full-resolution transfer are shared by every architecture (:mod:`stgan_cli.model.nets`).
"""

from __future__ import annotations

from ...errors import StganError, suggest

DEFAULT = "paper"


def _registry() -> dict[str, type]:
    """Every architecture by name.  The modules are read on first use (they import torch), and
    they import nothing of this one, so the package has no import circle."""
    from . import crop, lite, paper, refiner

    return {cls.arch_name: cls for module in (crop, lite, paper, refiner) for cls in vars(module).values()
            if isinstance(cls, type) and "arch_name" in vars(cls)}


def names() -> list[str]:
    return sorted(_registry())


def get(name: str) -> type:
    known = _registry()
    if name not in known:
        raise StganError(f"unknown architecture '{name}' (known: {', '.join(sorted(known))}){suggest(name, known)}")
    return known[name]


def reads_detail(name: str) -> bool:
    """Whether architecture ``name`` reads its window at ``model.detail`` times the frame."""
    return bool(getattr(get(name), "reads_detail", False))


def build(name: str, warps: int, image_size):
    return get(name)(warps, tuple(image_size))
