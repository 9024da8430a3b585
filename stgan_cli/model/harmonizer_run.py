"""The harmonizer without PyTorch: its folder's config, what it reads (the composite and the
object's mask at 120x160), and its ``model.onnx`` run by onnxruntime.  Importing this module imports
neither torch nor onnxruntime; :mod:`stgan_cli.model.harmonizer` holds the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import kinds
from .kinds import FRAME

KIND = kinds.HARMONIZER


def read_config(folder: Path) -> dict:
    """The harmonizer's ``config.yaml``; a folder of another kind is refused in one line."""
    return kinds.read_config(folder, KIND, "a harmonizer")


def is_harmonizer(folder: Path) -> bool:
    return kinds.is_kind(folder, KIND)


def inputs(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the harmonizer reads of a composite ``rgb`` (H, W, 3, float in [0, 1]) and the object's
    ``mask`` (H, W, float in [0, 1]): both resized to :data:`FRAME`, as (1, 3, h, w) and (1, 1, h, w)."""
    import cv2

    size = (FRAME[1], FRAME[0])
    small = cv2.resize(np.ascontiguousarray(rgb, np.float32), size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(np.ascontiguousarray(mask, np.float32), size, interpolation=cv2.INTER_AREA)
    return small.transpose(2, 0, 1)[None], m[None, None]


class OnnxHarmonizer:
    """The harmonizer run by onnxruntime from a folder's ``model.onnx``, refused unless it was made
    from the folder's current weights."""

    name = "onnx"

    def __init__(self, folder: Path):
        self.session = kinds.stamped_session(folder, threads=2)

    def predict(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"rgb": rgb.astype(np.float32), "mask": mask.astype(np.float32)})[0]


def open_harmonizer(folder: Path, engine: str = "auto"):
    """An object with ``predict(rgb, mask) -> theta`` and ``gate`` for ``folder``: onnxruntime unless
    ``engine`` is torch (or auto, and the graph is missing or stale), and a note when auto fell back to
    torch."""
    from ..errors import StganError

    gate = float(read_config(folder).get("gate", 0.0))
    net, note = None, None
    if engine in ("auto", "onnx"):
        try:
            net = OnnxHarmonizer(folder)
        except (ImportError, StganError) as exc:
            if engine == "onnx":
                raise StganError(str(exc)) from None
            note = f"harmonizer: PyTorch engine ({exc})"
    if net is None:
        from .harmonizer import load

        net = load(folder)
        net.name = "torch"
    net.gate = gate  # the predicted change under which an object is left as it is
    return net, note
