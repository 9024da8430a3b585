"""Paired placement data from real photos with object masks (``stgan data from-photos``).

For every object instance: the *background* is the photo with the object removed (its mask, dilated,
filled in from the surroundings), the *object* is an RGBA canvas the size of the photo holding the
object where it truly was.  That is the paired layout :class:`~stgan_cli.data.datasets.PairedDataset`
reads, so ``train``, ``refine`` and ``eval`` use it as they use generated rooms, and the true
placement of every object is known.  Photos keep their full resolution: evaluation measures there.

Masks come as one file per instance (``<image-stem>_<k>.png``), as COCO annotations (polygons or
RLE) or as an ``instances.csv`` index (``image,mask,category,iscrowd,...``).  The split into train
and test is by photo (a hash of the photo's name and the seed), never by instance: two objects of
one photo share its background, and a test photo must be one no training ever saw.

What a model could learn from the fill: the filled hole is a smooth patch in the shape of the
dilated object (``pyramid``), or streaks converging on its middle (``telea``, ``ns``).  On these data
"put the object over the smooth patch" is a shortcut to the truth that no user's photo offers; the
dilation and the smooth default make the patch's outline a loose, blurred hint rather than the
object's exact silhouette.  Scores on this data are therefore an optimistic bound for photos
without holes, and the identity and truth-start rows of ``stgan eval`` keep that in view.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import StganError
from .instances import Instance, instance_mask

FILLS = ("pyramid", "telea", "ns")
BACKGROUND_EXT, OBJECT_EXT = ".jpg", ".png"  # a photo stays a JPEG (a tenth of the size); alpha needs PNG


# --- filling the hole ----------------------------------------------------------------------------------

def pyramid_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (bool ``(H, W)``) from the known pixels by push-pull: averages over ever coarser
    levels, blended back up.  Smooth, no streaks, linear in the image size."""
    known = (~hole).astype(np.float32)
    x = img.astype(np.float32) * known[..., None]
    levels = []
    while min(known.shape) > 2:
        levels.append((x, known))
        size = ((known.shape[1] + 1) // 2, (known.shape[0] + 1) // 2)
        x = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
        known = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    # a hole that spans the coarsest level takes the mean of everything known
    mean = x.reshape(-1, x.shape[-1]).sum(0) / max(float(known.sum()), 1e-6)
    colour = np.where((known > 0)[..., None], x / np.maximum(known, 1e-6)[..., None], mean)
    for x, known in reversed(levels):
        up = cv2.resize(colour, (known.shape[1], known.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        a = known[..., None]
        colour = a * (x / np.maximum(known, 1e-6)[..., None]) + (1 - a) * up
    top = 65535 if img.dtype == np.uint16 else 255
    return np.where(hole[..., None], np.clip(np.round(colour), 0, top), img).astype(img.dtype)


def fill_hole(img: np.ndarray, hole: np.ndarray, method: str = "pyramid") -> np.ndarray:
    if method == "pyramid":
        return pyramid_fill(img, hole)
    if method not in FILLS:
        raise StganError(f"--fill {method}: expected one of {', '.join(FILLS)}")
    # OpenCV's inpainting, on a copy at most 480 px wide: its cost grows with the hole's area, and
    # what it paints into a large hole is blurry anyway.
    h, w = hole.shape
    s = min(1.0, 480 / max(h, w))
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    painted = cv2.inpaint(small, small_hole * 255, 3, flag)
    up = cv2.resize(painted, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.where(hole[..., None], up, img)


# --- one instance --------------------------------------------------------------------------------------

def skip_reason(mask: np.ndarray, iscrowd: bool, min_area: float, max_area: float, border: int = 1) -> str | None:
    """Why an instance makes no training pair, or None."""
    if iscrowd:
        return "crowd region"
    area = float(mask.mean())
    if area == 0:
        return "empty mask"
    if area < min_area:
        return "smaller than --min-area"
    if area > max_area:
        return "covers most of the photo"
    if border and (mask[:border].any() or mask[-border:].any() or mask[:, :border].any()
                   or mask[:, -border:].any()):
        return "cut by the photo's border"
    return None


def make_pair(rgb: np.ndarray, mask: np.ndarray, fill: str = "pyramid", dilate: float = 0.03):
    """(background without the object, RGBA canvas with the object at its true place).

    The hole is the mask dilated by ``dilate`` of the object's box diagonal (at least 2 px): the
    object's soft edge and colour fringe go with it."""
    ys, xs = np.nonzero(mask)
    r = max(2, int(round(dilate * np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))))
    hole = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    background = fill_hole(rgb, hole, fill)
    top = 65535 if rgb.dtype == np.uint16 else 255
    canvas = np.zeros((*mask.shape, 4), rgb.dtype)
    on = mask > 0
    canvas[on, :3] = rgb[on]
    canvas[on, 3] = top
    return background, canvas


def split_of(photo_key: str, seed: int, train_fraction: float) -> str:
    """``train`` or ``test`` for a photo, from a hash of its name and the seed: the same photo always
    lands in the same split, whatever else is in the dataset."""
    h = hashlib.sha256(f"{seed}:{photo_key}".encode()).digest()
    return "train" if int.from_bytes(h[:8], "big") / 2**64 < train_fraction else "test"


@dataclass
class PhotoJob:
    image: Path
    instances: list[Instance]
    split: str
    out: Path
    fill: str
    dilate: float
    min_area: float
    max_area: float


def process_photo(job: PhotoJob) -> list[dict]:
    """Every instance of one photo: a written pair (``meta`` row) or a skip (``skipped`` reason)."""
    from ..files import imageio

    rows = []
    try:
        pic = imageio.read_image(job.image)
    except StganError as exc:
        return [{"name": i.name, "skipped": "unreadable photo", "error": str(exc)} for i in job.instances]
    rgb = pic.pixels[..., :3] if pic.channels >= 3 else np.repeat(pic.pixels[..., None], 3, 2)
    if rgb.dtype == np.uint16:
        rgb = (rgb // 257).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
    for inst in job.instances:
        try:
            mask = instance_mask(inst, pic.size)
        except StganError as exc:
            rows.append({"name": inst.name, "skipped": "unreadable mask", "error": str(exc)})
            continue
        reason = skip_reason(mask, inst.iscrowd, job.min_area, job.max_area)
        if reason:
            rows.append({"name": inst.name, "skipped": reason})
            continue
        background, canvas = make_pair(rgb, mask, job.fill, job.dilate)
        folder = job.out / job.split
        imageio.write_image(folder / "backgrounds" / f"{inst.name}{BACKGROUND_EXT}", background, pic.icc)
        imageio.write_image(folder / "objects" / f"{inst.name}{OBJECT_EXT}", canvas)
        ys, xs = np.nonzero(mask)
        rows.append({"name": inst.name, "split": job.split, "image": str(job.image), "category": inst.category,
                     "source": inst.source, "size": list(pic.size),
                     "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                     "area": round(float(mask.mean()), 5)})
    return rows


def build(instances: list[Instance], out: Path, *, fill: str = "pyramid", dilate: float = 0.03,
          min_area: float = 0.02, max_area: float = 0.8, categories: set[str] | None = None,
          train_fraction: float = 0.9, seed: int = 0, workers: int = 2, on_photo=None) -> dict:
    """Write the pairs of ``instances`` into ``out/train`` and ``out/test``; returns the summary
    (counts per split, skipped instances per reason), also written to ``out/summary.json``."""
    from ..files import atomic

    if fill not in FILLS:
        raise StganError(f"--fill {fill}: expected one of {', '.join(FILLS)}")
    skipped: Counter = Counter()
    for split in ("train", "test"):
        for sub in ("backgrounds", "objects"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
    jobs = [PhotoJob(img, insts, split, out, fill, dilate, min_area, max_area)
            for img, insts, split in by_photo(instances, categories, skipped, seed, train_fraction)]
    meta: dict[str, list[dict]] = {"train": [], "test": []}
    photos = {"train": set(), "test": set()}
    examples: dict[str, str] = {}
    done = _collect(map_photos(process_photo, jobs, workers), jobs, meta, photos, skipped, examples, on_photo)
    for split, rows in meta.items():
        rows.sort(key=lambda r: r["name"])
        atomic.write_bytes(out / split / "meta.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    summary = {"instances": len(instances), "photos": done,
               "pairs": {s: len(meta[s]) for s in meta}, "photos_per_split": {s: len(photos[s]) for s in photos},
               "skipped": dict(sorted(skipped.items())), "skipped_examples": examples,
               "settings": {"fill": fill, "dilate": dilate, "min_area": min_area, "max_area": max_area,
                            "categories": sorted(categories) if categories else None,
                            "split": train_fraction, "seed": seed}}
    atomic.write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def by_photo(instances: list[Instance], categories: set[str] | None, skipped: Counter, seed: int,
             train_fraction: float) -> list[tuple[Path, list[Instance], str]]:
    """(photo, its instances, its split) in the photo's order; instances outside ``categories`` are
    counted in ``skipped``."""
    grouped: dict[Path, list[Instance]] = defaultdict(list)
    for inst in instances:
        if categories and inst.category not in categories:
            skipped["not in --categories"] += 1
            continue
        grouped[inst.image].append(inst)
    return [(img, insts, split_of(f"{insts[0].source}/{img.name}", seed, train_fraction))
            for img, insts in sorted(grouped.items())]


def map_photos(fn, jobs: list, workers: int):
    """``fn`` over ``jobs`` in order, in ``workers`` processes when there is more than one job."""
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            yield from pool.map(fn, jobs, chunksize=4)
    else:
        yield from map(fn, jobs)


def _collect(results, jobs, meta, photos, skipped, examples, on_photo) -> int:
    done = 0
    for job, rows in zip(jobs, results):
        done += 1
        for row in rows:
            if "skipped" in row:
                skipped[row["skipped"]] += 1
                if "error" in row:
                    examples.setdefault(row["skipped"], row["error"])
            else:
                meta[row["split"]].append(row)
                photos[row["split"]].add(row["image"])
        if on_photo:
            on_photo(job)
    return done
