"""Reading YAML settings files (model and training configs) with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

from .errors import StganError


def read_yaml(path: str | Path):
    """The parsed content of a YAML file; every way it can be unreadable is one :class:`StganError`."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StganError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise StganError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError:
        raise StganError(f"{path}: not a text file (a config is YAML text)") from None
    except OSError as exc:
        raise StganError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        raise StganError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
