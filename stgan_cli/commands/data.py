"""``stgan data ...``: make training data."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import finite_number, friendly_errors, log, progress_bar

app = typer.Typer(help="Make training data.", no_args_is_help=True, add_completion=False)


def parse_size(text: str) -> tuple[int, int]:
    from ..errors import UsageError

    parts = text.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size {text}: expected HxW, e.g. 120x160") from None
    if h < 32 or w < 32:
        raise UsageError(f"--size {text}: at least 32x32")
    return h, w


@app.command("synth-indoor", no_args_is_help=True)
@friendly_errors
def synth_indoor(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create (train/ and test/ inside).")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.", min=1)],
    seed: Annotated[int, typer.Option("--seed", help="Sample i depends only on (seed, i).")] = 0,
    size: Annotated[str, typer.Option("--size", help="Image size HxW.")] = "120x160",
    split: Annotated[float, typer.Option("--split", help="Fraction of samples in train/.", min=0.0, max=1.0, callback=finite_number)] = 0.9,
    workers: Annotated[int, typer.Option("--workers", help="Processes rendering in parallel.", min=1)] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a dataset already in --out.")] = False,
    shadows: Annotated[bool, typer.Option("--shadows/--no-shadows",
                                          help="Keep the furniture's contact shadow on the empty room's floor.")] = True,
):
    """Render rooms with one piece of furniture each: a paired dataset (backgrounds/, objects/, meta.jsonl)."""
    from ..data import synth_indoor as si
    from ..errors import StganError

    hw = parse_size(size)
    existing = [out / s for s in ("train", "test") if (out / s).exists()]
    if existing and not overwrite:
        raise StganError(f"{existing[0]}: a dataset is already there (use --overwrite)")
    if existing:
        import shutil

        for folder in existing:
            shutil.rmtree(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(f"{out}: cannot create the dataset folder ({exc.strerror})") from None
    t0 = time.perf_counter()
    with progress_bar("rendering") as progress:
        task = progress.add_task("render", total=n)
        counts = si.generate(out, n, seed, hw, split, workers, on_sample=lambda m: progress.advance(task),
                             shadows=shadows)
    dt = time.perf_counter() - t0
    log(f"wrote {n} samples ({counts['train']} train, {counts['test']} test) at {hw[0]}x{hw[1]} to {out} "
        f"in {dt:.1f} s ({n / dt:.1f} samples/s)")
    if not sys.stdout.isatty():
        print(out)


@app.command("from-photos", no_args_is_help=True)
@friendly_errors
def from_photos(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create (train/ and test/ inside).")],
    images: Annotated[Optional[Path], typer.Option(
        "--images", help="Folder of photos (default with --instances: images/ beside the CSV).")] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Folder of masks named <image-stem>_<k>.png.")] = None,
    coco: Annotated[Optional[Path], typer.Option("--coco", help="COCO annotation JSON (polygons or RLE).")] = None,
    instances: Annotated[Optional[Path], typer.Option(
        "--instances", help="instances.csv (columns image, mask, category, iscrowd), or a folder of such "
                            "folders (such as the segmented/ folder of the shared real photos).")] = None,
    min_area: Annotated[float, typer.Option("--min-area", help="Skip objects smaller than this fraction of the photo.",
                                            min=0.0, max=1.0, callback=finite_number)] = 0.02,
    max_area: Annotated[float, typer.Option("--max-area", help="Skip objects larger than this fraction of the photo.",
                                            min=0.0, max=1.0, callback=finite_number)] = 0.8,
    categories: Annotated[Optional[str], typer.Option("--categories", help="Only these categories: a,b,c.")] = None,
    fill: Annotated[str, typer.Option("--fill", help="How the object's hole is filled: pyramid | telea | ns.")] = "pyramid",
    dilate: Annotated[float, typer.Option("--dilate", help="Hole = mask grown by this fraction of the object's "
                                                           "box diagonal.", min=0.0, max=0.5,
                                            callback=finite_number)] = 0.03,
    split: Annotated[float, typer.Option("--split", help="Fraction of photos in train/ (by photo).", min=0.0, max=1.0,
                                         callback=finite_number)] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Processes in parallel.", min=1)] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a dataset already in --out.")] = False,
):
    """Paired data from real photos with object masks: each object cut out at its true place, its
    hole filled in the background. Train, refine and eval read the result like generated rooms."""
    from ..data import instances as instance_lists, photos
    from ..errors import StganError, UsageError

    given = [name for name, v in (("--masks", masks), ("--coco", coco), ("--instances", instances)) if v is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --masks DIR, --coco FILE.json, --instances FILE.csv|DIR")
    if (masks is not None or coco is not None) and images is None:
        raise UsageError(f"{given[0]} needs --images DIR, the photos")
    if fill not in photos.FILLS:
        raise UsageError(f"--fill {fill}: expected one of {', '.join(photos.FILLS)}")
    existing = [out / s for s in ("train", "test") if (out / s).exists()]
    if existing and not overwrite:
        raise StganError(f"{existing[0]}: a dataset is already there (use --overwrite)")
    if masks is not None:
        found = instance_lists.from_mask_folder(images, masks)
    elif coco is not None:
        found = instance_lists.from_coco(images, coco)
    elif instances.is_dir():
        found = instance_lists.from_segmented_tree(instances)
    else:
        found = instance_lists.from_instances_csv(instances, images)
    wanted = _start_dataset(found, existing, categories)
    _build(found, out, "cutting out", lambda on_photo: photos.build(
        found, out, fill=fill, dilate=dilate, min_area=min_area, max_area=max_area, categories=wanted,
        train_fraction=split, seed=seed, workers=workers, on_photo=on_photo))


def _build(found: list, out: Path, label: str, build) -> None:
    """Run ``build(on_photo)`` over the photos of ``found`` with a progress bar, and report the splits
    and what was skipped."""
    from ..errors import StganError

    t0 = time.perf_counter()
    n_photos = len({i.image for i in found})
    try:
        with progress_bar(label) as progress:
            task = progress.add_task("photos", total=n_photos)
            summary = build(lambda _: progress.advance(task))
    except OSError as exc:
        raise StganError(f"{out}: cannot write the dataset ({exc.strerror or exc})") from None
    skipped = ", ".join(f"{n} {why}" for why, n in summary["skipped"].items()) or "none"
    log(f"{len(found)} instances in {n_photos} photos -> {summary['pairs']['train']} train / "
        f"{summary['pairs']['test']} test pairs ({summary['photos_per_split']['train']} / "
        f"{summary['photos_per_split']['test']} photos) in {time.perf_counter() - t0:.0f} s; skipped: {skipped}")
    for why, example in summary["skipped_examples"].items():
        log(f"e.g. {why}: {example}")
    if not sys.stdout.isatty():
        print(out)


def _start_dataset(found: list, existing: list[Path], categories: str | None) -> set[str] | None:
    """Refuse an empty instance list, clear the splits being replaced (--overwrite), and return the
    categories asked for."""
    from ..errors import StganError

    if not found:
        raise StganError("no object instances found in the annotations")
    if existing:
        import shutil

        for folder in existing:
            shutil.rmtree(folder)
    return {c.strip() for c in categories.split(",") if c.strip()} if categories else None


@app.command("harmonize", no_args_is_help=True)
@friendly_errors
def harmonize(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create (train/ and test/ inside).")],
    instances: Annotated[Path, typer.Option(
        "--instances", help="instances.csv (columns image, mask, category, iscrowd), or a folder of such "
                            "folders (such as the segmented/ folder of the shared real photos).")],
    images: Annotated[Optional[Path], typer.Option(
        "--images", help="Folder of photos (default: images/ beside the CSV).")] = None,
    min_area: Annotated[float, typer.Option("--min-area", help="Skip objects smaller than this fraction of the photo.",
                                            min=0.0, max=1.0, callback=finite_number)] = 0.01,
    max_area: Annotated[float, typer.Option("--max-area", help="Skip objects larger than this fraction of the photo.",
                                            min=0.0, max=1.0, callback=finite_number)] = 0.8,
    categories: Annotated[Optional[str], typer.Option("--categories", help="Only these categories: a,b,c.")] = None,
    split: Annotated[float, typer.Option("--split", help="Fraction of photos in train/ (by photo).", min=0.0, max=1.0,
                                         callback=finite_number)] = 0.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of the colour changes.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Processes in parallel.", min=1)] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a dataset already in --out.")] = False,
):
    """Harmonization pairs from real photos with object masks: each object recoloured by a random,
    plausible change (exposure, white balance, contrast, saturation, tone curve, another object's
    colours), the photo as it was the truth. Train and eval of a harmonizer read the result."""
    from ..data import harmonize as pairs, instances as instance_lists
    from ..errors import StganError

    existing = [out / s for s in ("train", "test") if (out / s).exists()]
    if existing and not overwrite:
        raise StganError(f"{existing[0]}: a dataset is already there (use --overwrite)")
    found = (instance_lists.from_segmented_tree(instances) if instances.is_dir()
             else instance_lists.from_instances_csv(instances, images))
    wanted = _start_dataset(found, existing, categories)
    _build(found, out, "recolouring", lambda on_photo: pairs.build(
        found, out, min_area=min_area, max_area=max_area, categories=wanted, train_fraction=split, seed=seed,
        workers=workers, on_photo=on_photo))


@app.command("samples")
@friendly_errors
def samples(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the sample rooms and cut-outs.")] = Path("sample_data"),
    n: Annotated[int, typer.Option("--n", help="Number of rooms.", min=1)] = 4,
    seed: Annotated[int, typer.Option("--seed")] = 2026,
):
    """Write a few 480x640 rooms and cropped furniture cut-outs with their true placement (the demo's inputs)."""
    from ..data import synth_indoor as si

    infos = si.write_samples(out, n, seed=seed)
    log(f"wrote {len(infos)} rooms and cut-outs to {out}")


@app.command("sheet", no_args_is_help=True)
@friendly_errors
def sheet(
    data: Annotated[Path, typer.Argument(metavar="DIR", help="A paired dataset folder (or its train/ or test/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Contact sheet PNG to write.")],
    n: Annotated[int, typer.Option("--n", help="How many samples.", min=1)] = 32,
    columns: Annotated[int, typer.Option("--columns", min=1)] = 8,
):
    """A contact sheet of composites (object over background) from a paired dataset."""
    import numpy as np

    from ..composite import compositing
    from ..files import imageio
    from ..data.datasets import PairedDataset, dataset_root
    from ..errors import StganError

    folder = data if (data / "backgrounds").is_dir() or not (data / "train").is_dir() else data / "train"
    dataset_root(folder, None, ("backgrounds", "objects"))
    backgrounds = imageio.list_images(folder / "backgrounds")
    if not backgrounds:
        raise StganError(f"{folder}: the dataset is empty (no images in backgrounds/)")
    first = imageio.read_image(backgrounds[0])
    ds = PairedDataset.load(folder, size=first.size, cache=False)
    if len(ds) == 0:
        raise StganError(f"{folder}: the dataset is empty (meta.jsonl lists no samples)")
    tiles = []
    for i in range(min(n, len(ds))):
        bg, fg = ds.bg[i].astype(np.float32) / 255, ds.fg[i].astype(np.float32) / 255
        tiles.append(np.round(compositing.over(fg, bg) * 255).astype(np.uint8))
    rows = [tiles[r:r + columns] for r in range(0, len(tiles), columns)]
    rows[-1] += [np.zeros_like(tiles[0])] * (columns - len(rows[-1]))
    strips = [compositing.strip(r, height=tiles[0].shape[0], gap=2) for r in rows]
    gap = np.zeros((2, *strips[0].shape[1:]), np.uint8)
    grid = np.concatenate([part for s in strips for part in (gap, s)][1:], 0)
    imageio.write_image(out, grid)
    log(f"wrote {out} ({len(tiles)} samples)")


@app.command("glasses", no_args_is_help=True)
@friendly_errors
def glasses(
    glasses_dir: Annotated[Path, typer.Option("--glasses", help="RGBA glasses: canonical canvases or tight cut-outs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write (backgrounds/, objects/, real/).")],
    faces_dir: Annotated[Optional[Path], typer.Option("--faces", help="Photos of people (without glasses).")] = None,
    celeba: Annotated[Optional[Path], typer.Option(
        "--celeba", help="CelebA root instead of --faces: faces without/with the Eyeglasses attribute.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="With --celeba: at most this many faces of each kind.")] = None,
    real: Annotated[Optional[Path], typer.Option("--real", help="Photos of people wearing glasses (unpaired route).")] = None,
    size: Annotated[int, typer.Option("--size", help="Side of the square face frame.", min=32)] = 144,
    copies: Annotated[int, typer.Option("--copies", help="Crops per face: the first plain, the rest augmented.", min=1)] = 4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    holdout: Annotated[int, typer.Option(
        "--holdout", help="Every K-th photo into test/ (unaugmented), the rest into train/; 0: no split.", min=0)] = 0,
):
    """Build a glasses training folder from face photos: aligned crops, canonical glasses, real examples."""
    from ..data.glasses import build, build_celeba
    from ..errors import UsageError

    if (faces_dir is None) == (celeba is None):
        raise UsageError("give exactly one of --faces DIR and --celeba ROOT")
    if celeba is not None:
        counts = build_celeba(celeba, glasses_dir, out, (size, size), limit)
        log(f"wrote {counts['backgrounds']} CelebA faces, {counts['objects']} glasses, {counts['real']} faces "
            f"wearing glasses to {out}")
        return
    counts = build(faces_dir, glasses_dir, out, (size, size), copies, real, seed, log=lambda m: log(m), holdout=holdout)
    test = f", {counts['test']} held-out faces in test/" if "test" in counts else ""
    log(f"wrote {counts['backgrounds']} face crops, {counts['objects']} glasses, {counts['real']} real examples{test} to {out}")
