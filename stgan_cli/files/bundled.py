"""Where the shipped models and sample images are: the repository's ``models/`` and ``sample_data/``
in a checkout (an editable install), or the copies a wheel carries inside the package
(``stgan_cli/bundled/``, mapped in by setup.py: the default model and the samples)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
CHECKOUT = PACKAGE.parent


def in_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "stgan_cli").resolve() == PACKAGE


def models_dir() -> Path:
    return CHECKOUT / "models" if in_checkout() else PACKAGE / "bundled"


def samples_dir() -> Path:
    return CHECKOUT / "sample_data" if in_checkout() else PACKAGE / "bundled" / "samples"
