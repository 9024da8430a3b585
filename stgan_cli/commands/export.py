"""``stgan export``: a model leaving for another machine, runtime or the Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import friendly_errors, log
from .options import ModelArg, OfflineOpt


@friendly_errors
def export(
    model: ModelArg = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="package | onnx | pt2 | engine (see --list-formats).")] = "package",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output file (onnx, pt2, engine) or folder (package). engine: the model folder's "
                            "model.onnx by default, which composite --engine auto then uses.")] = None,
    push_to_hub: Annotated[Optional[str], typer.Option("--push-to-hub", help="Upload the package to ORG/REPO.")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repository as private.")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to.")] = None,
    list_formats: Annotated[bool, typer.Option("--list-formats", help="Show the formats and exit.")] = False,
    offline: OfflineOpt = False,
):
    """Export MODEL for another machine or runtime; every export is checked against PyTorch."""
    from ..errors import UsageError

    if list_formats:
        from ..model.export import FORMATS

        for f in FORMATS.values():
            extra = f"  needs: {', '.join(f.needs)} (pip install 'stgan-cli[export]')" if f.needs else ""
            print(f"{f.name:<8} {f.suffix or '(folder)':<9} {f.contents}{extra}")
        return
    if model is None:
        raise UsageError("MODEL is required (a registry name, a model folder or hf-hub:ORG/REPO)")
    if push_to_hub and fmt != "package":
        raise UsageError("--push-to-hub uploads a package: use --format package")
    if out is None and fmt != "engine":
        if not push_to_hub:
            raise UsageError("--out is required (a file for onnx/pt2, a folder for package)")
    from ..model import export as exporter

    if fmt == "engine" and out is None:
        from ..model.critic_run import is_critic
        from ..model.modelstore import resolve

        folder = resolve(model, offline)
        if is_critic(folder):
            from ..model.critic import export_onnx

            path = export_onnx(folder)
            log(f"exported the placement critic {model} to {path} (checked against PyTorch's scores)")
            print(json.dumps({"format": "engine", "path": str(path)}))
            return
        from ..model.harmonizer_run import is_harmonizer

        if is_harmonizer(folder):
            from ..model.harmonizer import export_onnx

            path = export_onnx(folder)
            log(f"exported the harmonizer {model} to {path} (checked against PyTorch's transform)")
            print(json.dumps({"format": "engine", "path": str(path)}))
            return
    staging = None
    if out is None and fmt != "engine":  # a package only on its way to the Hub, removed once it is there (or not)
        import tempfile

        staging = Path(tempfile.mkdtemp(prefix="stgan-package-"))
        out = staging / "package"
    try:
        result = exporter.export(model, fmt, out, offline=offline, say=log)
        log(f"exported {model} as {fmt} to {result['path']} (the object's corners land within "
            f"{result['max_corner_px']:.1e} px of PyTorch's)")
        if push_to_hub:
            from ..model.hub import push

            result["url"] = push(out, push_to_hub, private=private, revision=revision)
            log(f"pushed to {result['url']}")
    finally:
        if staging is not None:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps(result))
