"""``stgan export`` and ``stgan models ...``: models leaving and arriving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import friendly_errors, log

OfflineOpt = Annotated[bool, typer.Option("--offline", help="Use only the local Hugging Face cache (also HF_HUB_OFFLINE=1).")]


@friendly_errors
def export(
    model: Annotated[Optional[str], typer.Argument(
        metavar="MODEL", help="Registry name, model folder or hf-hub:ORG/REPO[@REV].")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="package | onnx | pt2 (see --list-formats).")] = "package",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (onnx, pt2) or folder (package).")] = None,
    push_to_hub: Annotated[Optional[str], typer.Option("--push-to-hub", help="Upload the package to ORG/REPO.")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repository as private.")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to.")] = None,
    list_formats: Annotated[bool, typer.Option("--list-formats", help="Show the formats and exit.")] = False,
    offline: OfflineOpt = False,
):
    """Export MODEL for another machine or runtime; every export is checked against PyTorch."""
    from ..errors import UsageError

    if list_formats:
        from ..export import FORMATS

        for f in FORMATS.values():
            extra = f"  needs: {', '.join(f.needs)} (pip install 'stgan-cli[export]')" if f.needs else ""
            print(f"{f.name:<8} {f.suffix or '(folder)':<9} {f.contents}{extra}")
        return
    if model is None:
        raise UsageError("MODEL is required (a registry name, a model folder or hf-hub:ORG/REPO)")
    if push_to_hub and fmt != "package":
        raise UsageError("--push-to-hub uploads a package: use --format package")
    if out is None:
        if not push_to_hub:
            raise UsageError("--out is required (a file for onnx/pt2, a folder for package)")
    from .. import export as exporter

    staging = None
    if out is None:  # a package only on its way to the Hub, removed once it is there (or not)
        import tempfile

        staging = Path(tempfile.mkdtemp(prefix="stgan-package-"))
        out = staging / "package"
    try:
        result = exporter.export(model, fmt, out, offline=offline)
        log(f"exported {model} as {fmt} to {out} (the object's corners land within "
            f"{result['max_corner_px']:.1e} px of PyTorch's)")
        if push_to_hub:
            from ..hub import push

            result["url"] = push(out, push_to_hub, private=private, revision=revision)
            log(f"pushed to {result['url']}")
    finally:
        if staging is not None:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps(result))


app = typer.Typer(help="Models: list, download, inspect.", no_args_is_help=True, add_completion=False)


@app.command("list")
@friendly_errors
def list_models():
    """Registry models and models in the Hugging Face cache: name, source, size, whether present."""
    from ..hub import list_all

    rows = list_all()
    print(f"{'name':<36} {'source':<10} {'size':>9}  present")
    for r in rows:
        size = f"{r['size'] / 1e6:.1f} MB" if r["size"] else "-"
        print(f"{r['name']:<36} {r['source']:<10} {size:>9}  {'yes' if r['present'] else 'no'}")


@app.command("download", no_args_is_help=True)
@friendly_errors
def download(name: Annotated[str, typer.Argument(metavar="NAME", help="hf-hub:ORG/REPO[@REV] (or a registry name).")]):
    """Fetch a model into the local Hugging Face cache, so that --offline finds it."""
    from .. import modelstore

    folder = modelstore.resolve(name, offline=False)
    log(f"{name} is at {folder}")
    print(folder)


@app.command("info", no_args_is_help=True)
@friendly_errors
def info(name: Annotated[str, typer.Argument(metavar="NAME")], offline: OfflineOpt = False):
    """A model's config and the measured figures of its card."""
    from .. import modelstore

    folder = modelstore.resolve(name, offline=offline)
    cfg = modelstore.read_config(folder)
    print(f"{name}: {folder}")
    for key, value in cfg.to_dict().items():
        if key != "provenance":
            print(f"  {key}: {value}")
    for key, value in (cfg.provenance or {}).items():
        print(f"  provenance.{key}: {value}")
    card = folder / modelstore.CARD_FILE
    if card.exists():
        lines = card.read_text(encoding="utf-8").splitlines()
        table = [l for l in lines if l.startswith("|")]
        if table:
            print("  measured:")
            for line in table:
                print(f"    {line}")
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    print(f"  size: {size / 1e6:.1f} MB")
