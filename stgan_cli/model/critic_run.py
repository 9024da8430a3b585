"""The placement critic without PyTorch: its folder's config, the object crop it reads, and its
``model.onnx`` run by onnxruntime (:mod:`stgan_cli.model.critic` holds the network itself).
Importing this module imports neither torch nor onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import kinds
from .kinds import FRAME, ONNX_FILE  # noqa: F401  (part of what this kind is)

KIND = kinds.CRITIC
OBJECT = 64  # the object's crop, letterboxed on grey, pixels a side


def object_crop(rgba: np.ndarray, premultiplied: bool = False) -> np.ndarray:
    """The object of ``rgba`` (H, W, 4; float in [0, 1]) on mid grey, letterboxed into a 64x64
    square (float32, RGB), as the critic sees it."""
    import cv2

    a = rgba[..., 3]
    ys, xs = np.nonzero(a > 0.5)
    if len(xs) == 0:
        ys, xs = np.nonzero(a > 0)
    if len(xs) == 0:
        return np.full((OBJECT, OBJECT, 3), 0.5, np.float32)
    crop = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    rgb = (crop[..., :3] if premultiplied else crop[..., :3] * crop[..., 3:]) + 0.5 * (1 - crop[..., 3:])
    h, w = rgb.shape[:2]
    s = OBJECT / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.full((OBJECT, OBJECT, 3), 0.5, np.float32)
    top, left = (OBJECT - nh) // 2, (OBJECT - nw) // 2
    out[top:top + nh, left:left + nw] = small.reshape(nh, nw, 3)
    return out


def read_config(folder: Path) -> dict:
    """The critic's ``config.yaml``; a folder of another kind is refused in one line."""
    return kinds.read_config(folder, KIND, "a placement critic")


def is_critic(folder: Path) -> bool:
    """Whether the model folder ``folder`` holds a placement critic."""
    return kinds.is_kind(folder, KIND)


class OnnxCritic:
    """The critic run by onnxruntime from a folder's ``model.onnx``, refused unless it was made from the
    folder's current weights."""

    def __init__(self, folder: Path):
        self.session = kinds.stamped_session(folder)

    def score(self, photo: np.ndarray, crop: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"photo": photo.astype(np.float32), "object": crop.astype(np.float32),
                                       "boxes": boxes.astype(np.float32)})[0]
