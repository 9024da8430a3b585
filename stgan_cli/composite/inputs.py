"""Turning FG/BG arguments (files, folders, quoted globs) into a list of composite items."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import StganError, UsageError
from ..files.imageio import IMAGE_SUFFIXES, list_images, passed_over_line


@dataclass
class Item:
    """One composite to make: foreground (+ mask) over background into ``out``."""

    fg: Path
    bg: Path
    out: Path
    mask: Path | None = None


def is_glob(arg: str) -> bool:
    return any(c in arg for c in "*?[")


def expand(arg: str, role: str, warnings: list[str] | None = None) -> tuple[list[Path], bool]:
    """Files named by ``arg`` (sorted) and whether it named many (a folder or a glob); entries passed
    over (pipes, links to nothing) are said in ``warnings``."""
    if is_glob(arg) and not Path(arg).exists():
        matches = sorted(Path(p) for p in glob.glob(arg))
        files = [p for p in matches if p.is_file()]
        if warnings is not None:
            warnings += [passed_over_line(p) for p in matches if not p.is_file() and not p.is_dir()]
        if not files:
            raise StganError(f"{arg}: the pattern matches no {role} files")
        return files, True
    path = Path(arg)
    if path.is_dir():
        files = list_images(path, warnings)
        if not files:
            raise StganError(f"{arg}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files, True
    if not path.exists():
        raise StganError(f"{arg}: no such file or folder")
    return [path], False


def _mask_for(fg: Path, masks: list[Path], many_masks: bool) -> Path | None:
    if not many_masks:
        return masks[0]
    by_stem = {m.stem: m for m in masks}
    return by_stem.get(fg.stem) or by_stem.get(fg.stem + "_mask")


def plan(fg_arg: str, bg_arg: str, out: str, mask_arg: str | None = None, cross: bool = False,
         fmt: str = "png") -> tuple[list[Item], bool, list[str]]:
    """Items to composite, whether this is a batch, and warnings (unpaired files).

    One foreground with a folder of backgrounds (or the reverse) names outputs after the folder's
    files; two folders pair files by stem, or with ``cross`` make every combination.
    """
    warnings: list[str] = []
    fgs, fg_many = expand(fg_arg, "foreground", warnings)
    bgs, bg_many = expand(bg_arg, "background", warnings)
    masks, mask_many = expand(mask_arg, "mask", warnings) if mask_arg else ([], False)
    if mask_many and not fg_many:
        raise UsageError("--mask is a folder but the foreground is a single file")
    batch = fg_many or bg_many
    if not batch:
        items = [Item(fgs[0], bgs[0], Path(out), masks[0] if masks else None)]
        check_outputs(items)
        return items, False, warnings

    out_dir = Path(out)
    if out_dir.suffix.lower() in IMAGE_SUFFIXES and not out_dir.is_dir():
        raise UsageError(f"--out {out}: for many inputs --out is a folder, not an image file")
    ext = "." + fmt.lower().lstrip(".")
    pairs: list[tuple[Path, Path, str]] = []
    if fg_many and bg_many and not cross:
        bg_by_stem = {b.stem: b for b in bgs}
        for f in fgs:
            if f.stem in bg_by_stem:
                pairs.append((f, bg_by_stem[f.stem], f.stem))
            else:
                warnings.append(f"{f}: no background with the same name; skipped (use --cross for every pair)")
        unused = sorted(set(bg_by_stem) - {f.stem for f in fgs})
        warnings += [f"{bg_by_stem[s]}: no foreground with the same name; skipped" for s in unused]
    elif fg_many and bg_many:
        pairs = [(f, b, f"{f.stem}__{b.stem}") for f in fgs for b in bgs]
    elif bg_many:
        pairs = [(fgs[0], b, b.stem) for b in bgs]
    else:
        pairs = [(f, bgs[0], f.stem) for f in fgs]
    items = []
    for f, b, stem in pairs:
        mask = _mask_for(f, masks, mask_many) if masks else None
        if masks and mask is None:
            warnings.append(f"{f}: no mask with the same name in {mask_arg}; the foreground's alpha is used")
        items.append(Item(f, b, out_dir / f"{stem}{ext}", mask))
    if not items:
        raise StganError("no foreground and background share a file name; use --cross for every pair")
    check_outputs(items)
    return items, True, warnings


def _inode(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_FLAGS = {"the mask": "--save-mask", "the warp file": "--save-warp", "a step picture": "--steps"}


def image_only(it: Item) -> list[tuple[str, Path]]:
    """What an item writes when nothing but the image is asked for."""
    return [("the composite", it.out)]


def check_outputs(items: list[Item], written=image_only, init: Path | None = None) -> None:
    """Refuse, before any work, a plan that would lose a file.

    ``written(item)`` lists every file an item writes as ``(what, path)`` pairs, the image first
    (default: the image alone; :func:`stgan_cli.composite.outputs.written`): no two of them, across
    all items, may be one file (``room.png`` and ``room.jpg`` both to ``room.png``; ``x.png``'s mask and
    ``x_mask.png``'s composite), none may be any item's input (foreground, background, mask, or
    ``init``), under any name (links included), and none may be a folder, pipe or device."""
    from ..files import atomic

    sources: dict[Path, tuple[str, Path]] = {}
    nodes: dict = {}
    roles = [("background", lambda it: it.bg), ("foreground", lambda it: it.fg), ("mask", lambda it: it.mask)]
    for it in items:
        for role, get in roles:
            src = get(it)
            if src is not None and Path(os.path.abspath(src)) not in sources:
                sources[Path(os.path.abspath(src))] = (role, src)
    if init is not None:
        sources.setdefault(Path(os.path.abspath(init)), ("--init warp file", init))
    for key, (role, src) in sources.items():
        node = _inode(key)
        if node is not None:
            nodes.setdefault(node, (role, src))
    seen: dict[Path, tuple[Item, int, str]] = {}
    for it in items:
        for n, (kind, path) in enumerate(written(it)):
            key = Path(os.path.abspath(path))
            if key in seen:
                first, first_n, first_kind = seen[key]
                if n == first_n == 0:
                    a = first.bg if first.fg == it.fg else first.fg
                    b = it.bg if first.fg == it.fg else it.fg
                    raise UsageError(f"{a} and {b} would both be written to {path}: rename one of them")
                raise UsageError(f"{path} would be written twice, as {first_kind} of {_name(first)} and as "
                                 f"{kind} of {_name(it)}: rename one of the inputs or choose another --out")
            seen[key] = (it, n, kind)
            hit = sources.get(key) or nodes.get(_inode(key))
            if hit is not None:
                what = f"--out {path} is" if n == 0 else f"{_FLAGS.get(kind, kind)} would write {path},"
                raise UsageError(f"{what} the {hit[0]} {hit[1]}: the input would be overwritten; "
                                 "choose another output")
            try:
                atomic.check_target(path)
            except StganError as exc:
                raise UsageError(str(exc)) from None


def _name(it: Item) -> str:
    return f"{it.fg} on {it.bg}"


def parse_shard(spec: str) -> tuple[int, int]:
    """``K/N`` (``K`` counted from 0, as array jobs number their tasks) -> ``(K, N)``."""
    try:
        k, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec}: expected K/N, e.g. 0/4 for the first of four parts") from None
    if not 0 <= k < n:
        raise UsageError(f"--shard {spec}: K counts from 0 to N-1")
    return k, n


def shard(items: list[Item], k: int, n: int) -> list[Item]:
    """Part ``k`` of ``n`` of a batch: every n-th item from the k-th, by output name, so the parts
    never overlap, cover the batch, and do not depend on the order files were listed in."""
    return sorted(items, key=lambda it: str(it.out))[k::n]


def claim_outputs(items: list[Item], out: str, batch: bool, overwrite: bool, skip_existing: bool,
                  written=image_only):
    """Make ready to write: the output folder (a batch's, created), temporary files a killed run left
    there removed, each output's format known.  Outputs that exist already are replaced for a single
    composite; in a batch they are an error unless ``overwrite`` or ``skip_existing`` says otherwise
    (an item is there already when any file it writes, ``written(item)``, is).
    Returns the items to run and the items skipped."""
    from ..files import atomic, imageio

    out_dir = Path(out) if batch else Path(out).parent
    if batch:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StganError(f"{out_dir}: cannot create the output folder ({atomic.describe(exc)})") from None
    atomic.clean_stale(out_dir)
    for item in items:
        imageio.output_format(item.out)
    if not batch or overwrite:
        return items, []
    there = {id(it): next((p for _, p in written(it) if p.exists()), None) for it in items}
    existing = [it for it in items if there[id(it)] is not None]
    if existing and not skip_existing:
        raise UsageError(f"{there[id(existing[0])]} already exists ({len(existing)} outputs do): "
                         "use --overwrite or --skip-existing")
    return [it for it in items if there[id(it)] is None], existing
