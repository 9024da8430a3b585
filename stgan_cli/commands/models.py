"""``stgan models ...``: what models are here, fetching one, reading one's config and card."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import friendly_errors, log
from .options import OfflineOpt

app = typer.Typer(help="Models: list, download, inspect.", no_args_is_help=True, add_completion=False)


@app.command("list")
@friendly_errors
def list_models():
    """Registry models and models in the Hugging Face cache: name, source, size, whether present."""
    from ..model.modelstore import list_all

    rows = list_all()
    print(f"{'name':<36} {'source':<10} {'size':>9}  present")
    for r in rows:
        size = f"{r['size'] / 1e6:.1f} MB" if r["size"] else "-"
        print(f"{r['name']:<36} {r['source']:<10} {size:>9}  {'yes' if r['present'] else 'no'}")


@app.command("download", no_args_is_help=True)
@friendly_errors
def download(name: Annotated[str, typer.Argument(metavar="NAME", help="hf-hub:ORG/REPO[@REV] (or a registry name).")]):
    """Fetch a model into the local Hugging Face cache, so that --offline finds it."""
    from ..model import modelstore

    folder = modelstore.resolve(name, offline=False)
    log(f"{name} is at {folder}")
    print(folder)


@app.command("info", no_args_is_help=True)
@friendly_errors
def info(name: Annotated[str, typer.Argument(metavar="NAME")], offline: OfflineOpt = False):
    """A model's config and the measured figures of its card."""
    from ..model import modelstore

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
        from ..files.smalltext import read_text

        for title, table in card_tables(read_text(card, "model card (Markdown)")):
            print(f"  measured: {title}")
            for line in table:
                print(f"    {line}")
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    print(f"  size: {size / 1e6:.1f} MB")


def card_tables(text: str) -> list[tuple[str, list[str]]]:
    """The tables of a model card, each titled by the sentence that introduces it (the paragraph just
    above it, else the nearest heading), shortened to one line."""
    import re

    lines = text.splitlines()
    tables, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        para = []
        while j >= 0 and lines[j].strip() and not lines[j].startswith(("|", "#")):
            para.insert(0, lines[j].strip())
            j -= 1
        heading = next((l.lstrip("#").strip() for l in reversed(lines[:start]) if l.startswith("#")), "")
        if para and para[0].startswith("`"):  # a paragraph that opens with the command: the heading says more
            para = []
        title = re.sub(r"[*`]", "", " ".join(para) or heading)
        first = re.split(r"(?<=\.)\s", title)[0].rstrip(".:;")
        tables.append(((first if len(first) <= 110 else first[:107] + "..."), lines[start:i]))
    return tables
