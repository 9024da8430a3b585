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


def _examples(*lines: str) -> str:
    # Rich joins an epilog's lines into one paragraph unless each is its own paragraph.
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)


app.command("composite", no_args_is_help=True, epilog=_examples(
    "stgan composite sample_data/object_1.png sample_data/room_1.png --out result.png",
    "stgan composite sample_data/object_0.png sample_data/room_0.png --box 450,170,560,370 --out out.png --steps steps/",
    "stgan composite sample_data/object_0.png 'sample_data/room_*.png' --out results/ --json",
    "stgan composite glasses.png photos/ --out out/ --model glasses",
))(composite_cmd.composite)
app.command("train", epilog=_examples(
    "stgan train --config configs/indoor.yaml --data data/indoor --out runs/indoor",
    "stgan train --resume runs/indoor",
    "stgan train --config configs/smoke.yaml --data data/indoor --out runs/try --set optim.lr_pretrain=2e-4",
))(train_cmd.train)
app.command("refine", no_args_is_help=True, epilog=_examples(
    "stgan refine indoor --data my_pairs/ --out my_model --steps 500",
))(train_cmd.refine)
app.command("export", no_args_is_help=True, epilog=_examples(
    "stgan export indoor --format onnx --out indoor.onnx",
    "stgan export glasses --format engine",
))(export_cmd.export)
app.command("eval", no_args_is_help=True, epilog=_examples(
    "stgan eval indoor --data data/indoor/test",
    "stgan eval indoor indoor-paper --data data/real/test --protocol box --decoys --markdown",
))(evaluate_cmd.evaluate)
app.command("app", epilog=_examples("stgan app", "stgan app --model glasses --port 8000"))(app_cmd.app)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")


class _ReaderAwareStdout:
    """``sys.stdout`` that survives its reader leaving (``stgan ... --json | head -1``): the command
    goes on and ends with its own exit code (a batch still writes every image), and what it would
    have printed goes nowhere.  ``reader_gone`` tells a command that wants to say so."""

    def __init__(self, stream):
        self._stream, self.reader_gone = stream, False

    def write(self, text):
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self):
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self):
        import os

        self.reader_gone = True
        try:  # later flushes of what is still buffered go to /dev/null instead of failing again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main() -> None:
    """Console entry point.

    Once a command has finished, every output is written, closed and renamed into place, so the
    process ends without the interpreter's teardown, which takes about half a second once torch
    is loaded.  (Only here: tests call ``app`` directly.)
    """
    import os
    import sys

    sys.stdout = _ReaderAwareStdout(sys.stdout)
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BrokenPipeError:  # a closed stdout that got past the wrapper (a library writing to the fd itself)
        code = 0
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
            pass
    os._exit(code)
