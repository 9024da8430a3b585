"""A glasses training folder from ordinary face photos (``stgan data glasses``).

Writes the unpaired layout that ``configs/glasses.yaml`` reads::

    backgrounds/   aligned face crops (eyes where CelebA's aligned images have them), augmented
    objects/       each pair of glasses on the canonical canvas, lenses on the canonical eyes
    real/          aligned crops of people wearing glasses (--real), or, without them, the
                   faces with glasses placed at the detected-eye pose (the paired route)
    meta.jsonl     per plain crop: the photo, the detector, the head's roll, yaw and width from
                   the landmarks, and where OpenCV's Haar detector puts the eyes in the crop (the
                   ``detector`` protocol of ``stgan eval``)

With the ``landmarks`` extra the crops are aligned on where the landmarks say the glasses belong
(:func:`stgan_cli.composite.faces.glasses_anchor`: over the eyes, a little wider and lower, as measured on real
wearers), which is the truth a model learns and is measured against; faces that already
wear glasses are left out of the faces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..composite import compositing, faces
from ..files import imageio
from ..errors import StganError
from .datasets import read_meta  # noqa: F401  (callers read a glasses folder's meta from here)


def _aligned(rgb: np.ndarray, face: faces.Face, size, rng, augment: bool) -> np.ndarray:
    """The face's crop in the model frame; with ``augment``, a small random pose, a flip and colour."""
    m = faces.similarity(faces.glasses_anchor(face), faces.canonical_eyes(size))
    if augment:  # a slightly different crop: rotation +-5 deg, scale +-5 %, shift +-2 % of the frame
        angle, scale = math.radians(rng.uniform(-5, 5)), rng.uniform(0.95, 1.05)
        c = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2])
        rot = np.array([[scale * math.cos(angle), -scale * math.sin(angle)], [scale * math.sin(angle), scale * math.cos(angle)]])
        jitter = np.eye(3)
        jitter[:2, :2] = rot
        jitter[:2, 2] = c - rot @ c + rng.uniform(-0.02, 0.02, 2) * np.array(size[::-1])
        m = jitter @ m
    crop = compositing.warp_premultiplied(imageio.to_unit_float(rgb), m, size, replicate=True)
    if augment:
        if rng.random() < 0.5:
            crop = crop[:, ::-1]  # the canonical eyes are symmetric about the frame's middle
        grey = crop.mean(2, keepdims=True)
        crop = grey + (crop - grey) * rng.uniform(0.8, 1.2)  # saturation
        crop = (crop - 0.5) * rng.uniform(0.85, 1.15) + 0.5 + rng.uniform(-0.06, 0.06)  # contrast, brightness
    return np.clip(crop, 0, 1)


def face_meta(face: faces.Face, haar: list[faces.Face], size) -> dict:
    """What ``meta.jsonl`` says of a face's plain crop: the detector, the head's pose, its eye centres
    in the crop's pixels (the crop is aligned on :func:`~stgan_cli.composite.faces.glasses_anchor`, which puts
    the eyes on the canonical ones only for an average face looking ahead), and the Haar
    detector's eyes for the same face (the one whose eyes are nearest, within half an eye distance)
    in the crop's pixels, or None where Haar misses it."""
    from ..core import frames
    from ..composite import landmarks

    frame_from_image = faces.similarity(faces.glasses_anchor(face), faces.canonical_eyes(size))
    iod = float(np.linalg.norm(face.eyes[1] - face.eyes[0]))
    row = {"detector": face.detector, "eyes": face.eyes.round(2).tolist(), "haar_eyes": None,
           "eyes_in_crop": frames.apply_homography(frame_from_image, face.eyes).round(3).tolist()}
    near = [(float(np.linalg.norm(h.eyes - face.eyes, axis=1).mean()), h) for h in haar if h.eyes_found]
    if near:
        dist, h = min(near, key=lambda x: x[0])
        if dist < 0.5 * iod:
            row["haar_eyes"] = frames.apply_homography(frame_from_image, h.eyes).round(3).tolist()
    if face.landmarks is not None:
        row.update(roll=round(landmarks.roll_degrees(face.landmarks), 2), yaw=round(landmarks.yaw(face.landmarks), 3),
                   width_over_eyes=round(landmarks.face_width(face.landmarks) / iod, 3),
                   # the face's lines without its pixels: what `stgan eval --report` draws, to show cases
                   # of faces that are not ours to publish
                   landmarks_in_crop=frames.apply_homography(frame_from_image, face.landmarks).round(1).tolist())
    return row


def canonical_glasses(pic: imageio.Picture, size) -> np.ndarray:
    """Premultiplied float RGBA canvas of ``size`` with the lenses on the canonical eyes."""
    cutout = compositing.make_cutout(pic)
    lenses = faces.lens_centres(cutout.rgba[..., 3])
    if lenses is None:
        raise StganError(f"{pic.path}: cannot find two lenses in the alpha (is it a pair of glasses?)")
    frame_from_crop = faces.similarity(lenses, faces.canonical_eyes(size))
    return compositing.warp_premultiplied(cutout.rgba, frame_from_crop, size)


def _images(folder) -> list[Path]:
    if isinstance(folder, list):  # already chosen photos
        return folder
    if not folder.is_dir():
        raise StganError(f"{folder}: no such folder")
    files = imageio.list_images(folder)
    if not files:
        raise StganError(f"{folder}: no images")
    return files


def _to8(premult_or_rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    if alpha is not None:
        rgb = premult_or_rgb / np.maximum(alpha[..., None], 1e-6)
        premult_or_rgb = np.dstack([rgb, alpha])
    return np.round(np.clip(premult_or_rgb, 0, 1) * 255).astype(np.uint8)


def build_celeba(root: Path, glasses_dir: Path, out: Path, size=(144, 144), limit: int | None = None,
                 split: str = "train") -> dict:
    """The unpaired route from CelebA: aligned faces without the Eyeglasses attribute as backgrounds,
    faces with it as real examples (both cropped as in the paper), and the canonical glasses."""
    from .datasets import celeba_faces

    for sub in ("backgrounds", "objects", "real"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    counts = {"backgrounds": 0, "objects": 0, "real": 0}
    for path in _images(glasses_dir):
        canvas = canonical_glasses(imageio.read_image(path), size)
        imageio.write_image(out / "objects" / f"{path.stem}.png", _to8(canvas[..., :3], canvas[..., 3]))
        counts["objects"] += 1
    for sub, wearing in (("backgrounds", False), ("real", True)):
        for i, face in enumerate(celeba_faces(root, wearing, split, size, limit)):
            imageio.write_image(out / sub / f"celeba_{i:06d}.png", face)
            counts[sub] += 1
    return counts


def build(face_dir: Path, glasses_dir: Path, out: Path, size=(144, 144), copies: int = 4, real_dir: Path | None = None,
          seed: int = 0, log=print, holdout: int = 0) -> dict:
    """Write the folder; returns the counts. Photos without a face are reported and skipped.

    With ``holdout`` K, every K-th photo (in name order) goes, unaugmented, into ``out/test`` and the
    rest into ``out/train``: faces the model never sees, to measure it on."""
    if holdout:
        photos = _images(face_dir)
        test = [p for i, p in enumerate(photos) if i % holdout == holdout - 1]
        train = [p for p in photos if p not in test]
        counts = build(train, glasses_dir, out / "train", size, copies, real_dir, seed, log)
        counts["test"] = build(test, glasses_dir, out / "test", size, 1, None, seed + 1, log)["backgrounds"]
        return counts
    rng = np.random.default_rng(seed)
    for sub in ("backgrounds", "objects", "real"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    canvases = []
    for path in _images(glasses_dir):
        canvas = canonical_glasses(imageio.read_image(path), size)
        canvases.append(canvas)
        imageio.write_image(out / "objects" / f"{path.stem}.png", _to8(canvas[..., :3], canvas[..., 3]))
        flipped = np.ascontiguousarray(canvas[:, ::-1])
        imageio.write_image(out / "objects" / f"{path.stem}_flip.png", _to8(flipped[..., :3], flipped[..., 3]))

    def crops_of(folder: Path, kind: str):
        made, skipped = 0, []
        for path in _images(folder):
            try:
                pic = imageio.read_image(path)
            except StganError as exc:
                skipped.append(str(exc))
                continue
            rgb = compositing.as_rgb(pic.pixels)
            found = [f for f in faces.detect_faces(rgb) if f.eyes_found]
            if kind == "faces" and any(f.glasses for f in found):  # they would carry two pairs
                skipped.append(f"{path}: {sum(bool(f.glasses) for f in found)} face(s) already wearing glasses")
                found = [f for f in found if not f.glasses]
            if not found:
                skipped.append(f"{path}: no face with both eyes found")
                continue
            haar = faces.detect_faces(rgb, "haar") if found[0].detector != "haar" else found
            for k, face in enumerate(found):
                meta = {"photo": str(path), "face": k, **face_meta(face, haar, size)}
                for j in range(copies):
                    yield path, k, j, _aligned(rgb, face, size, rng, augment=j > 0), meta
                made += 1
        for s in skipped:
            log(f"skipped {s}")
        if made == 0:
            raise StganError(f"{folder}: no usable {kind} (no face with both eyes found in any photo)")

    counts = {"backgrounds": 0, "objects": 2 * len(canvases), "real": 0}
    rows = []
    for path, k, j, crop, meta in crops_of(face_dir, "faces"):
        name = f"{path.stem}_f{k}_a{j}.png"
        imageio.write_image(out / "backgrounds" / name, _to8(crop))
        counts["backgrounds"] += 1
        if j == 0:
            rows.append({"name": name, **meta})
        if real_dir is None:  # the paired route: glasses where the eyes are
            g = canvases[int(rng.integers(len(canvases)))]
            if j % 2:
                g = g[:, ::-1]
            imageio.write_image(out / "real" / name, _to8(compositing.over(g, crop)))
            counts["real"] += 1
    if real_dir is not None:
        for path, k, j, crop, _ in crops_of(real_dir, "photos with glasses"):
            imageio.write_image(out / "real" / f"{path.stem}_f{k}_a{j}.png", _to8(crop))
            counts["real"] += 1
    from ..files import atomic

    atomic.write_bytes(out / "meta.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    return counts
