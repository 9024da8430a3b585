"""What every command shares: error reporting, device choice, logging to stderr."""

from __future__ import annotations

import functools
import math
import os
import contextlib
import sys

import click
import typer

from ..errors import StganError, UsageError, unexpected


def log(message: str) -> None:
    """A line for the user on stderr (stdout is kept for results)."""
    from ..files.quiet import LOCK

    with LOCK:  # never while a C library's chatter is being kept off the terminal
        print(f"stgan: {message}", file=sys.stderr, flush=True)


def progress_bar(label: str, enabled: bool = True):
    """A bar on stderr, cleared when done; nothing drawn when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not (enabled and console.is_terminal))


@contextlib.contextmanager
def tracked(label: str, total: int):
    """:func:`progress_bar` of one task of ``total`` steps; yields ``advance(count=1)``."""
    with progress_bar(label) as bar:
        task = bar.add_task(label, total=total)
        yield lambda count=1: bar.advance(task, count)


def fail(message: str, code: int = 1):
    from ..files.quiet import LOCK

    with LOCK:
        print(f"stgan: error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def friendly_errors(fn):
    """Known errors become one line on stderr and an exit code; anything else becomes one line too,
    with a hint; ``STGAN_DEBUG=1`` shows tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if os.environ.get("STGAN_DEBUG") == "1":
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except StganError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (typer.Exit, typer.Abort, click.ClickException, BrokenPipeError):
            raise  # a reader that stopped reading (`| head`) is handled, silently, by cli.main
        except MemoryError:
            fail("out of memory")
        except Exception as exc:  # noqa: BLE001 - the last resort: never a traceback for a user
            fail(unexpected(exc))

    return wrapper


DEVICE_HELP = "expected auto, cpu, cuda, cuda:N or mps"


def check_device_name(name: str) -> None:
    """Refuse a malformed ``--device`` before anything heavy is imported."""
    n = name.strip().lower()
    head, _, index = n.partition(":")
    if n in ("auto", "cpu", "mps", "cuda") or (head == "cuda" and index.isdigit()):
        return
    raise UsageError(f"--device {name}: {DEVICE_HELP}")


def resolve_device(name: str) -> str:
    """``auto | cpu | cuda[:N] | mps`` to a torch device string that exists here."""
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("--device mps: no Apple GPU (MPS) is available here")
        return "mps"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA device is available here")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UsageError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
        return name
    raise UsageError(f"--device {name}: {DEVICE_HELP}")


# Pixel coordinates beyond this are typing mistakes (a 100-megapixel photo is ~12,000 px wide), and
# far larger ones overflow the float32 geometry downstream.
MAX_COORDINATE = 1e6


def parse_numbers(text: str, count: int, option: str, limit: float = MAX_COORDINATE) -> tuple[float, ...]:
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count:
        raise UsageError(f"{option} {text}: expected {count} comma-separated numbers")
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{option} {text}: the numbers must be finite (no nan or inf)")
    if not all(abs(v) <= limit for v in values):
        raise UsageError(f"{option} {text}: the numbers must lie within +-{limit:g} (pixels of the background)")
    return values


def finite_number(value: float | None) -> float | None:
    """A float option's callback: nan and inf are no settings (click's ranges let nan through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def check_finite(value: float | None, option: str) -> None:
    if value is not None and not math.isfinite(value):
        raise UsageError(f"{option} {value}: must be a finite number (no nan or inf)")
