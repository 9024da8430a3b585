"""Object instances of photos with masks: one mask file per instance (``<image-stem>_<k>.png``), COCO
annotations (polygons or RLE) or an ``instances.csv`` index (``image,mask,category,iscrowd,...``),
read into :class:`Instance` lists, and each instance's mask decoded at the photo's size."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..files import imageio
from ..errors import StganError


@dataclass
class Instance:
    """One object of one photo.  Its mask is a file (``mask``) or a COCO ``segmentation``."""

    image: Path
    name: str  # unique within a dataset: "<source>__<image stem>_<k>"
    category: str = ""
    iscrowd: bool = False
    mask: Path | None = None
    segmentation: object = None
    source: str = ""


# --- reading instance lists ----------------------------------------------------------------------

def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise StganError(f"{folder}: no such images folder")
    return {p.stem: p for p in imageio.list_images(folder)}


def from_mask_folder(images: Path, masks: Path, source: str = "") -> list[Instance]:
    """Masks named ``<image-stem>_<k>.png`` (any image format) beside a folder of photos."""
    photos = _image_files(images)
    if not masks.is_dir():
        raise StganError(f"{masks}: no such mask folder")
    out = []
    for m in imageio.list_images(masks):
        stem, _, k = m.stem.rpartition("_")
        if not stem or not k.isdigit():
            raise StganError(f"{m}: mask names must be <image-stem>_<k> (e.g. photo_0.png)")
        if stem not in photos:
            raise StganError(f"{m}: no photo named {stem}.* in {images}")
        out.append(Instance(photos[stem], f"{source + '__' if source else ''}{m.stem}", mask=m, source=source))
    return out


def from_coco(images: Path, coco_json: Path, source: str = "") -> list[Instance]:
    """Instances of a COCO annotation file whose photos are in ``images``."""
    try:
        data = json.loads(Path(coco_json).read_text(encoding="utf-8"))
        cats = {c["id"]: c["name"] for c in data.get("categories", [])}
        files = {im["id"]: (im["file_name"], im.get("height"), im.get("width")) for im in data["images"]}
        anns = data["annotations"]
    except FileNotFoundError:
        raise StganError(f"{coco_json}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StganError(f"{coco_json}: not a COCO annotation file ({type(exc).__name__}: {exc})") from None
    photos = _image_files(images)
    counters: Counter = Counter()
    out = []
    for ann in anns:
        entry = files.get(ann.get("image_id"))
        if entry is None:
            continue
        stem = Path(entry[0]).stem
        if stem not in photos:  # annotation files often list photos that were not copied
            continue
        k = counters[stem]
        counters[stem] += 1
        out.append(Instance(photos[stem], f"{source + '__' if source else ''}{stem}_{k}",
                            category=cats.get(ann.get("category_id"), ""), iscrowd=bool(ann.get("iscrowd", 0)),
                            segmentation=ann.get("segmentation"), source=source))
    return out


def from_instances_csv(index: Path, images: Path | None = None, source: str = "") -> list[Instance]:
    """An ``instances.csv`` (columns image, mask, category, iscrowd; more are ignored); photos in
    ``images`` (default: ``images/`` beside the file), masks in ``masks/`` beside the file."""
    index = Path(index)
    images = images or index.parent / "images"
    masks = index.parent / "masks"
    try:
        with open(index, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise StganError(f"{index}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StganError(f"{index}: unreadable ({exc})") from None
    if rows and not {"image", "mask"} <= set(rows[0]):
        raise StganError(f"{index}: needs the columns image and mask (has {', '.join(rows[0])})")
    out = []
    for row in rows:
        mask = masks / row["mask"]
        out.append(Instance(images / row["image"], f"{source + '__' if source else ''}{Path(row['mask']).stem}",
                            category=row.get("category", ""), iscrowd=str(row.get("iscrowd", "0")) == "1",
                            mask=mask, source=source))
    return out


def from_segmented_tree(root: Path) -> list[Instance]:
    """Every ``*/instances.csv`` below ``root`` (each folder with its images/ and masks/), named after
    its folder (the layout of ``../shared/realdata/segmented``)."""
    indexes = sorted(Path(root).glob("*/instances.csv"))
    if not indexes:
        raise StganError(f"{root}: no */instances.csv inside")
    return [inst for idx in indexes for inst in from_instances_csv(idx, source=idx.parent.name)]


# --- masks -------------------------------------------------------------------------------------------

def rle_counts(counts) -> list[int]:
    """COCO RLE counts: a list already, or the compressed string of COCO's ``maskApi``."""
    if isinstance(counts, list):
        return [int(c) for c in counts]
    s, out, p = counts.encode() if isinstance(counts, str) else counts, [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def rle_mask(counts, size) -> np.ndarray:
    """Binary ``(H, W)`` mask from RLE counts (column-major runs, starting with zeros)."""
    h, w = size
    runs = rle_counts(counts)
    if sum(runs) != h * w or any(r < 0 for r in runs):
        raise ValueError(f"RLE runs add up to {sum(runs)}, not {h}x{w}")
    values = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)
    return values.reshape(w, h).T.copy()


def polygon_mask(polygons, size) -> np.ndarray:
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    pts = [np.round(np.asarray(poly, np.float64).reshape(-1, 2) - 0.5).astype(np.int32)
           for poly in polygons if len(poly) >= 6]
    if not pts:
        raise ValueError("no polygon with three points or more")
    cv2.fillPoly(mask, pts, 1)
    return mask


def coco_mask(segmentation, size) -> np.ndarray:
    if isinstance(segmentation, list):
        return polygon_mask(segmentation, size)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        rle_size = tuple(segmentation.get("size", size))
        if rle_size != tuple(size):
            raise ValueError(f"RLE is {rle_size[1]}x{rle_size[0]}, the photo {size[1]}x{size[0]}")
        return rle_mask(segmentation["counts"], size)
    raise ValueError("segmentation is neither polygons nor RLE")


def instance_mask(inst: Instance, size) -> np.ndarray:
    """The instance's binary mask ``(H, W)`` uint8 at the photo's ``size``; one line naming the file
    when it cannot be had."""
    from ..files import imageio

    if inst.mask is not None:
        pic = imageio.read_image(inst.mask)
        if pic.size != tuple(size):
            raise StganError(f"{inst.mask}: mask is {pic.size[1]}x{pic.size[0]}, its photo {inst.image} is "
                             f"{size[1]}x{size[0]}")
        return (imageio.mask_from_picture(pic) > 0.5).astype(np.uint8)
    try:
        return coco_mask(inst.segmentation, size)
    except (ValueError, TypeError) as exc:
        raise StganError(f"{inst.name}: unusable COCO segmentation ({exc})") from None
