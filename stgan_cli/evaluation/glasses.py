"""What a ``stgan data glasses`` folder says of each face (its ``meta.jsonl``), as the evaluation
reads it: the eyes in the frame, the landmarks, and where OpenCV's Haar detector put the eyes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import StganError


def detector_starts(ds, data: Path, size, n: int):
    """Glasses placed where OpenCV's Haar detector puts the eyes, on the faces whose crops were aligned
    on landmarks: the indices of those faces (cycled to ``n``) and, per index, the warp that shows
    the canonical glasses where composite puts them on those eyes
    (:func:`stgan_cli.composite.landmarks.glasses_from_eyes`)."""
    from ..core import frames
    from ..data.glasses import read_meta
    from ..composite.faces import canonical_eyes, similarity
    from ..composite.landmarks import glasses_from_eyes

    meta = read_meta(ds.data.root)
    usable = [i for i, name in enumerate(ds.data.bg_names or [])
              if meta.get(name, {}).get("haar_eyes") and meta[name].get("detector") == "landmarks"]
    if not usable:
        raise StganError(f"{data}: --protocol detector needs faces aligned on landmarks with Haar's eyes in "
                         "meta.jsonl (stgan data glasses with the landmarks extra installed)")
    idx = np.resize(np.array(usable), n)
    to_canon = frames.canon_from_pixel(size)
    eyes = canonical_eyes(size)
    p = []
    for i in idx:
        shown = similarity(eyes, glasses_from_eyes(np.array(meta[ds.data.bg_names[i]]["haar_eyes"])))
        p.append(frames.params_showing_similarity(to_canon @ shown @ np.linalg.inv(to_canon)))
    return idx, torch.from_numpy(np.array(p)).float()


def meta_of(ds, indices, key: str) -> list:
    """Per index of a glasses folder, ``key`` of its face's ``meta.jsonl`` row, or None."""
    from ..data.glasses import read_meta

    meta = read_meta(ds.data.root)
    names = ds.data.bg_names or []
    return [meta.get(names[i], {}).get(key) if i < len(names) else None for i in indices]


def eye_distances(ds, idx):
    """Per index, the face's eye distance in the frame (``eyes_in_crop``), or None where a folder
    predates it or a face lacks it: the crops are aligned on where the glasses belong, so the eyes
    are not always the canonical ones."""
    rows = meta_of(ds, idx, "eyes_in_crop")
    if not rows or any(r is None for r in rows):
        return None
    return torch.from_numpy(np.array([np.linalg.norm(np.subtract(*r)) for r in rows])).float()


def face_eyes(ds, idx):
    """Per index, the face's own eye centres in the frame (``eyes_in_crop``, (N, 2, 2)), or None
    where a folder predates them."""
    rows = meta_of(ds, idx, "eyes_in_crop")
    if not rows or any(r is None for r in rows):
        return None
    return torch.from_numpy(np.array(rows, float)).float()


def pick_landmarks(ds, picks: dict) -> dict:
    """Per pick of a glasses report, the face's landmarks in the frame, or None."""
    return dict(zip(picks, meta_of(ds, picks.values(), "landmarks_in_crop")))
