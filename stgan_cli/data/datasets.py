"""Dataset folders, read at the model's resolution and kept decoded in memory (and in a cache file).

Paired (e.g. ``stgan data synth-indoor``)::

    DIR/backgrounds/NAME.png   the scene without the object
    DIR/objects/NAME.png       the object, RGBA, on a canvas the size of its background, at its true pose

Unpaired (e.g. glasses)::

    DIR/backgrounds/*          scenes without the object (faces without glasses)
    DIR/objects/*              RGBA cut-outs on a canvas in a canonical pose
    DIR/real/*                 photos that contain such objects (faces wearing glasses)

A folder with ``train/`` and ``test/`` inside is a dataset with splits: pass ``split``.
Arrays are uint8 ``(N, H, W, C)``; objects are stored premultiplied, so resizing does not bleed the
colour of transparent pixels into the edges.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..files import atomic, imageio
from ..errors import StganError

CACHE_VERSION = 1


def dataset_root(root, split: str | None, needs: tuple[str, ...]) -> Path:
    """The folder holding ``needs`` (``backgrounds``...), descending into ``split`` when given."""
    root = Path(root)
    if not root.is_dir():
        raise StganError(f"{root}: no such dataset folder")
    folder = root / split if split else root
    if split and not folder.is_dir():
        raise StganError(f"{root}: has no '{split}' split (expected {folder})")
    missing = [n for n in needs if not (folder / n).is_dir()]
    if missing:
        hint = ""
        if not split and (root / "train").is_dir():
            hint = f"; it has splits: use {root / 'train'} or {root / 'test'}"
        raise StganError(f"{folder}: not a dataset folder (no {'/, '.join(missing)}/ inside){hint}")
    return folder


def has_filled_holes(folder: Path) -> bool:
    """Whether a paired folder (or its split) was cut from real photos by ``stgan data from-photos``:
    its backgrounds then show each object's true place as a filled hole."""
    for summary in (Path(folder) / "summary.json", Path(folder).parent / "summary.json"):
        if summary.is_file():
            try:
                return "fill" in json.loads(summary.read_text()).get("settings", {})
            except (OSError, ValueError, AttributeError):
                return False
    return False


def to_size(pixels: np.ndarray, size) -> np.ndarray:
    h, w = size
    if pixels.shape[:2] == (h, w):
        return pixels
    return cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)


def load_rgb(path: Path, size) -> np.ndarray:
    return rgb_at(imageio.read_image(path), size)


def rgb_at(pic: imageio.Picture, size) -> np.ndarray:
    px = pic.pixels
    if px.dtype == np.uint16:
        px = (px // 257).astype(np.uint8)
    rgb = np.repeat(px[..., None], 3, 2) if px.ndim == 2 else px[..., :3]
    return to_size(np.ascontiguousarray(rgb), size)


def load_premultiplied(path: Path, size, expect_size=None) -> np.ndarray:
    """An RGBA object as premultiplied uint8 at ``size``."""
    pic = imageio.read_image(path)
    if pic.channels != 4:
        raise StganError(f"{path}: object has no alpha channel (objects must be RGBA)")
    if expect_size is not None and pic.size != tuple(expect_size):
        raise StganError(f"{path}: is {pic.size[1]}x{pic.size[0]} but its background is "
                         f"{expect_size[1]}x{expect_size[0]}")
    px = imageio.to_unit_float(pic.pixels)
    if px[..., 3].max() <= 0:
        raise StganError(f"{path}: object is fully transparent")
    px[..., :3] *= px[..., 3:4]
    return np.round(to_size(px, size) * 255).astype(np.uint8)


def _cache_key(files: list[Path], size) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION} {size}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached(folder: Path, name: str, files: list[Path], size, build):
    """``build()``'s arrays, saved beside the data as ``.stgan-cache-NAME-HxW-KEY.npz`` for next time.
    A folder that cannot be written to is simply not cached."""
    key = _cache_key(files, size)
    path = folder / f".stgan-cache-{name}-{size[0]}x{size[1]}-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            pass
    arrays = build()
    try:
        for old in folder.glob(f".stgan-cache-{name}-{size[0]}x{size[1]}-*.npz"):
            old.unlink()
        with atomic.replacing(path, keep_suffix=True) as tmp:  # np.savez insists on ".npz"
            np.savez(tmp, **arrays)
    except (OSError, StganError):  # a cache that cannot be written is only slower next time
        pass
    return arrays


def read_meta(folder: Path) -> dict[str, dict]:
    """``meta.jsonl`` of a dataset folder (glasses crops, pairs from photos) by sample name; empty for
    folders written before it existed."""
    path = Path(folder) / "meta.jsonl"
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {r["name"]: r for r in rows}


@dataclass
class PairedDataset:
    """Backgrounds and objects at their true pose: ``bg`` (N, H, W, 3), ``fg`` (N, H, W, 4) premultiplied."""

    root: Path
    names: list[str]
    bg: np.ndarray
    fg: np.ndarray

    @classmethod
    def load(cls, root, size=(120, 160), split: str | None = None, cache: bool = True) -> "PairedDataset":
        folder = dataset_root(root, split, ("backgrounds", "objects"))
        bgs, objs = imageio.list_images(folder / "backgrounds"), imageio.list_images(folder / "objects")
        if not bgs:
            raise StganError(f"{folder / 'backgrounds'}: no images")
        if not objs:
            raise StganError(f"{folder / 'objects'}: no images")
        bg_by_stem = {p.stem: p for p in bgs}
        for o in objs:
            if o.stem not in bg_by_stem:
                raise StganError(f"{o}: no background with the same name in {folder / 'backgrounds'}")
        obj_stems = {o.stem for o in objs}
        lonely = [b for b in bgs if b.stem not in obj_stems]
        if lonely:
            raise StganError(f"{lonely[0]}: no object with the same name in {folder / 'objects'}")

        def build():
            bg_arr = np.empty((len(objs), *size, 3), np.uint8)
            fg_arr = np.empty((len(objs), *size, 4), np.uint8)
            for i, o in enumerate(objs):
                b = bg_by_stem[o.stem]
                pic = imageio.read_image(b)
                bg_arr[i] = rgb_at(pic, size)
                fg_arr[i] = load_premultiplied(o, size, expect_size=pic.size)
            return {"bg": bg_arr, "fg": fg_arr}

        files = bgs + objs
        arrays = cached(folder, "paired", files, tuple(size), build) if cache else build()
        return cls(folder, [o.stem for o in objs], arrays["bg"], arrays["fg"])

    def __len__(self) -> int:
        return len(self.names)

    def batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Float32 ``(B, 3, H, W)`` backgrounds and ``(B, 4, H, W)`` premultiplied objects in [0, 1]."""
        idx = np.asarray(indices)
        bg = self.bg[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255
        fg = self.fg[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255
        return bg, fg


@dataclass
class UnpairedDataset:
    """Scenes without the object, canonical object cut-outs, and real photos with such objects."""

    root: Path
    bg: np.ndarray  # (N1, H, W, 3)
    fg: np.ndarray  # (N2, H, W, 4) premultiplied
    real: np.ndarray  # (N3, H, W, 3)
    bg_names: list[str] | None = None  # file names of the backgrounds, in order

    @classmethod
    def load(cls, root, size=(120, 160), split: str | None = None, cache: bool = True) -> "UnpairedDataset":
        folder = dataset_root(root, split, ("backgrounds", "objects", "real"))
        lists = {}
        for sub in ("backgrounds", "objects", "real"):
            lists[sub] = imageio.list_images(folder / sub)
            if not lists[sub]:
                raise StganError(f"{folder / sub}: no images")

        def build():
            return {"bg": np.stack([load_rgb(p, size) for p in lists["backgrounds"]]),
                    "fg": np.stack([load_premultiplied(p, size) for p in lists["objects"]]),
                    "real": np.stack([load_rgb(p, size) for p in lists["real"]])}

        files = [p for sub in lists.values() for p in sub]
        arrays = cached(folder, "unpaired", files, tuple(size), build) if cache else build()
        return cls(folder, arrays["bg"], arrays["fg"], arrays["real"], [p.name for p in lists["backgrounds"]])


class GlassesEvalSet:
    """Aligned faces paired with canonical glasses (a ``stgan data glasses`` folder): the glasses
    are at their true pose on every face, so placement can be measured."""

    def __init__(self, data: "UnpairedDataset"):
        self.data = data

    @classmethod
    def load(cls, root, size) -> "GlassesEvalSet":
        return cls(UnpairedDataset.load(root, size))

    def __len__(self) -> int:
        return len(self.data.bg)

    def batch(self, indices, glasses=None):
        """Faces ``indices`` with the glasses ``glasses`` (default: cycled by index), as float arrays."""
        idx = np.asarray(indices)
        which = idx % len(self.data.fg) if glasses is None else np.asarray(glasses)
        bg = self.data.bg[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255
        fg = self.data.fg[which].transpose(0, 3, 1, 2).astype(np.float32) / 255
        return bg, fg


# --- CelebA ------------------------------------------------------------------------------------

CELEBA_CROP = 144
CELEBA_CENTRE = (124, 89)  # (row, col) in the 218x178 aligned images, as in the paper


def celeba_faces(root, eyeglasses: bool, split: str = "train", size=(144, 144), limit: int | None = None) -> np.ndarray:
    """CelebA aligned faces with (or without) the Eyeglasses attribute, cropped 144x144 around
    (row 124, col 89) as in ST-GAN, resized to ``size``: uint8 ``(N, H, W, 3)``.

    ``root`` holds ``img_align_celeba/``, ``list_attr_celeba.txt`` and ``list_eval_partition.txt``.
    """
    root = Path(root)
    attr_file, part_file, images = root / "list_attr_celeba.txt", root / "list_eval_partition.txt", root / "img_align_celeba"
    for needed in (attr_file, part_file, images):
        if not needed.exists():
            raise StganError(f"{root}: not a CelebA folder (missing {needed.name})")
    wanted_part = {"train": "0", "val": "1", "test": "2"}.get(split)
    if wanted_part is None:
        raise StganError(f"CelebA split must be train, val or test, not '{split}'")
    partition = {}
    for line in part_file.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2:
            partition[parts[0]] = parts[1]
    lines = attr_file.read_text().split("\n")
    try:
        header = lines[1].split()
        col = header.index("Eyeglasses")
    except (IndexError, ValueError):
        raise StganError(f"{attr_file}: no Eyeglasses column in the header line") from None
    names = []
    for line in lines[2:]:
        parts = line.split()
        if len(parts) != len(header) + 1:
            continue
        if partition.get(parts[0]) == wanted_part and (parts[col + 1] == "1") == eyeglasses:
            names.append(parts[0])
        if limit and len(names) >= limit:
            break
    if not names:
        raise StganError(f"{root}: no {split} faces {'with' if eyeglasses else 'without'} eyeglasses")
    r, c = CELEBA_CENTRE
    half = CELEBA_CROP // 2
    out = np.empty((len(names), *size, 3), np.uint8)
    for i, name in enumerate(names):
        face = load_rgb(images / name, (218, 178))
        out[i] = to_size(np.ascontiguousarray(face[r - half:r + half, c - half:c + half]), size)
    return out


def open_eval_set(root, size, split: str | None = None, glasses: bool = False):
    """The data set a placement can be measured on, as ``stgan eval`` and training both open it: the
    paired layout (objects at their true pose), or with ``glasses`` a ``stgan data glasses`` folder
    (any glasses on any face are at their true pose); ``split``: its sub-folder, if any."""
    if glasses:
        return GlassesEvalSet.load(Path(root) / split if split else root, size)
    return PairedDataset.load(root, size, split)
