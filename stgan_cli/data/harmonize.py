"""Harmonization pairs from real photos with object masks (``stgan data harmonize``).

Self-supervised, as iHarmony4 is made: an object of a real photo recoloured by a random, plausible
change (:func:`stgan_cli.core.colour.draw_change`) is the composite, the photo as it was is the
truth.  The split is by photo with :func:`stgan_cli.data.photos.split_of`, so with the same seed and
fraction the test photos are those of ``stgan data from-photos``.

Layout (each split)::

    DIR/photos/NAME.jpg      the photo (the truth), decoded as stored
    DIR/masks/NAME.png       one object's mask, 0/255, at the photo's size
    DIR/meta.jsonl           per pair: name, photo, mask, category, source, area, change
    DIR/lowres.npz           photos and masks at 120x160 (what training reads)

The composite is not stored: :func:`load_pair` makes it from the photo, the mask and the recorded
change, at full resolution, the same way every time.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core import colour
from ..errors import StganError
from .instances import Instance, instance_mask
from .photos import by_photo, map_photos, skip_reason

FRAME = (120, 160)


@dataclass
class PhotoJob:
    image: Path
    instances: list[Instance]
    split: str
    out: Path
    min_area: float
    max_area: float


def _small(img: np.ndarray, interpolation=cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(img, (FRAME[1], FRAME[0]), interpolation=interpolation)


def process_photo(job: PhotoJob) -> dict:
    """One photo: written once, each object's mask beside it; rows with each object's Lab statistics,
    and the photo and masks at 120x160."""
    from ..files import imageio

    rows, skipped = [], []
    try:
        pic = imageio.read_image(job.image)
    except StganError as exc:
        return {"rows": [], "skipped": [("unreadable photo", str(exc))] * len(job.instances)}
    rgb = pic.pixels[..., :3] if pic.channels >= 3 else np.repeat(pic.pixels[..., None], 3, 2)
    if rgb.dtype == np.uint16:
        rgb = (rgb // 257).astype(np.uint8)
    folder = job.out / job.split
    key = f"{job.instances[0].source}__{job.image.stem}" if job.instances[0].source else job.image.stem
    photo_rel = f"photos/{key}.jpg"
    wrote = False
    masks_small = []
    for inst in job.instances:
        try:
            mask = instance_mask(inst, pic.size) > 0
        except StganError as exc:
            skipped.append(("unreadable mask", str(exc)))
            continue
        reason = skip_reason(mask, inst.iscrowd, job.min_area, job.max_area, border=0)
        if reason:
            skipped.append((reason, inst.name))
            continue
        if not wrote:
            imageio.write_image(folder / photo_rel, np.ascontiguousarray(rgb))
            # the truth is the photo as stored (a JPEG), so read it back
            rgb = imageio.read_image(folder / photo_rel).pixels[..., :3]
            wrote = True
        imageio.write_image(folder / "masks" / f"{inst.name}.png", mask.astype(np.uint8) * 255)
        mean, std = colour.lab_stats(rgb.astype(np.float32) / 255, mask)
        rows.append({"name": inst.name, "photo": photo_rel, "mask": f"masks/{inst.name}.png",
                     "category": inst.category, "source": inst.source, "size": list(pic.size),
                     "area": round(float(mask.mean()), 5),
                     "lab": [[round(float(v), 3) for v in mean], [round(float(v), 3) for v in std]]})
        masks_small.append(_small(mask.astype(np.uint8) * 255))
    small = _small(np.ascontiguousarray(rgb)) if wrote else None
    return {"rows": rows, "skipped": skipped, "photo": small, "masks": masks_small}


def build(instances: list[Instance], out: Path, *, min_area: float = 0.01, max_area: float = 0.8,
          categories: set[str] | None = None, train_fraction: float = 0.8, seed: int = 0, workers: int = 2,
          on_photo=None) -> dict:
    """Write ``out/train`` and ``out/test``; returns the summary (also ``out/summary.json``)."""
    from ..files import atomic

    skipped: Counter = Counter()
    examples: dict[str, str] = {}
    for split in ("train", "test"):
        for sub in ("photos", "masks"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
    jobs = [PhotoJob(img, insts, split, out, min_area, max_area)
            for img, insts, split in by_photo(instances, categories, skipped, seed, train_fraction)]
    done = list(_progress(map_photos(process_photo, jobs, workers), on_photo))
    summary = {"pairs": {}, "photos_per_split": {}, "seed": seed, "split": train_fraction,
               "min_area": min_area, "max_area": max_area}
    for split in ("train", "test"):
        parts = [(job, d) for job, d in zip(jobs, done) if job.split == split and d["rows"]]
        rows = [r for _, d in parts for r in d["rows"]]
        photos = np.stack([d["photo"] for _, d in parts]) if parts else np.zeros((0, *FRAME, 3), np.uint8)
        masks = np.stack([m for _, d in parts for m in d["masks"]]) if rows else np.zeros((0, *FRAME), np.uint8)
        photo_of = np.array([i for i, (_, d) in enumerate(parts) for _ in d["rows"]], np.int32)
        _draw_changes(rows, photos, masks, photo_of, seed, split)
        with atomic.replacing(out / split / "lowres.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, photos=photos, masks=masks, photo_of=photo_of, names=np.array([r["name"] for r in rows]))
        with atomic.replacing(out / split / "meta.jsonl") as tmp:
            Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        summary["pairs"][split] = len(rows)
        summary["photos_per_split"][split] = len(parts)
    for d in done:
        for why, example in d["skipped"]:
            skipped[why] += 1
            examples.setdefault(why, example)
    summary["skipped"] = dict(skipped)
    summary["skipped_examples"] = examples
    with atomic.replacing(out / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _progress(results, on_photo):
    for r in results:
        if on_photo:
            on_photo(r)
        yield r


def _draw_changes(rows: list[dict], photos: np.ndarray, masks: np.ndarray, photo_of: np.ndarray, seed: int,
                  split: str) -> None:
    """Each row's change, drawn at 120x160 so that it visibly moves the object; a colour transfer
    takes another photo's object of the same split as its target."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    for i, row in enumerate(rows):
        others = np.flatnonzero(photo_of != photo_of[i])
        other = rows[int(rng.choice(others))]["lab"] if len(others) else None
        rgb = photos[photo_of[i]].astype(np.float32) / 255
        change, _ = colour.draw_visible_change(rgb, masks[i] > 127, rng,
                                               None if other is None else tuple(np.asarray(v) for v in other))
        row["change"] = change


# --- reading --------------------------------------------------------------------------------------

@dataclass
class Pair:
    name: str
    truth: np.ndarray  # float32 RGB in [0, 1], full resolution
    mask: np.ndarray  # bool
    composite: np.ndarray
    row: dict


def read_rows(folder: Path) -> list[dict]:
    path = Path(folder) / "meta.jsonl"
    if not path.is_file():
        raise StganError(f"{folder}: not a harmonization dataset (no meta.jsonl; make one with stgan data harmonize)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if rows and "change" not in rows[0]:
        raise StganError(f"{folder}: not a harmonization dataset (its meta.jsonl records no colour changes)")
    return rows


def is_harmonize_dataset(folder: Path) -> bool:
    try:
        return bool(read_rows(folder))
    except (StganError, ValueError):
        return False


def load_pair(folder: Path, row: dict, truth: np.ndarray | None = None) -> Pair:
    """One pair at full resolution: the truth, the mask and the composite made from the change.
    ``truth``: the row's photo, already decoded (its other objects' pairs share it)."""
    from ..files import imageio

    if truth is None:
        truth = imageio.read_image(Path(folder) / row["photo"]).pixels[..., :3].astype(np.float32) / 255
    mask = imageio.read_image(Path(folder) / row["mask"]).pixels
    mask = (mask if mask.ndim == 2 else mask[..., 0]) > 127
    return Pair(row["name"], truth, mask, colour.apply_change(truth, mask, row["change"]), row)


def load_lowres(folder: Path) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray]:
    """(rows, photos (P, 120, 160, 3) uint8, masks (N, 120, 160) uint8, photo index per row)."""
    rows = read_rows(folder)
    with np.load(Path(folder) / "lowres.npz") as z:
        photos, masks, photo_of = z["photos"], z["masks"], z["photo_of"]
    if len(masks) != len(rows):
        raise StganError(f"{folder}: lowres.npz does not match meta.jsonl (remake the dataset)")
    return rows, photos, masks, photo_of
