"""The ``stgan`` command.  Importing this module must stay cheap: no torch, no OpenCV."""

from __future__ import annotations

import typer

from . import __version__
from .commands import app as app_cmd
from .commands import composite as composite_cmd
from .commands import data as data_cmd
from .commands import evaluate as evaluate_cmd
from .commands import export as export_cmd
from .commands import models as models_cmd
from .commands import train as train_cmd

app = typer.Typer(
    name="stgan",
    help="Put an object into a photo so that it looks like it belongs there (ST-GAN, CVPR 2018).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        typer.echo(f"stgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Put an object into a photo so that it looks like it belongs there (ST-GAN, CVPR 2018)."""


app.command("composite", no_args_is_help=True)(composite_cmd.composite)
app.command("train")(train_cmd.train)
app.command("refine", no_args_is_help=True)(train_cmd.refine)
app.command("export", no_args_is_help=True)(export_cmd.export)
app.command("eval", no_args_is_help=True)(evaluate_cmd.evaluate)
app.command("app")(app_cmd.app)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")


def main() -> None:
    """Console entry point.

    Once a command has finished, every output is written, closed and renamed into place, so the
    process ends without the interpreter's teardown, which takes about half a second once torch
    is loaded.  (Only here: tests call ``app`` directly.)
    """
    import os
    import sys

    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BrokenPipeError:  # `stgan ... | head`: the reader has what it wanted; end quietly, as Unix tools do
        code = 141
    except KeyboardInterrupt:
        print("stgan: error: interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:  # noqa: BLE001 - outside any command (an import, typer itself)
        if os.environ.get("STGAN_DEBUG") == "1":
            raise
        from .errors import unexpected

        print(f"stgan: error: {unexpected(exc)}", file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            code = code or 141
    os._exit(code)
