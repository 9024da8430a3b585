"""``--place auto``: where the cut-out goes when the user gives no box: the placement critic
(:mod:`stgan_cli.model.critic`) scores a grid of candidate boxes (positions x scales) over the whole
photo in one pass, the best one is the start the generators correct.

Boxes are normalised (:mod:`stgan_cli.core.boxes`); the photo is read at the critic's 120x160, as
the generators read it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core import boxes as B

DEFAULT_CRITIC = "placement"
_LOCK = threading.Lock()
_CACHE: dict = {}


@dataclass
class Search:
    boxes: np.ndarray  # (N, 4) normalised candidate boxes, best first
    scores: np.ndarray  # (N,) the critic's scores, best first
    cells: np.ndarray  # (N, 2) each box's grid column and row
    grid: tuple[int, int]  # rows, cols of the grid of centres

    def best_per_position(self) -> np.ndarray:
        """(rows, cols): the best score of any scale centred in each cell (-inf where none fits)."""
        out = np.full(self.grid, -np.inf)
        for (c, r), s in zip(self.cells, self.scores):
            out[r, c] = max(out[r, c], s)
        return out

    def summary(self, size, top_k: int = 1) -> dict:
        """What the sidecar records: the chosen box (pixels), its score, the candidates' count and
        the next best."""
        pick = lambda i: {"box": [round(v, 1) for v in B.to_pixels(self.boxes[i], size)],  # noqa: E731
                          "score": round(float(self.scores[i]), 4)}
        return {"chosen": pick(0), "candidates": int(len(self.boxes)),
                "alternatives": [pick(i) for i in range(1, min(top_k, len(self.boxes)))]}


def critic_folder(ref: str | None = None) -> Path:
    """The critic's model folder: ``ref`` (a folder or a registry name), else the bundled ``placement``."""
    from ..model import modelstore

    return modelstore.resolve(ref or DEFAULT_CRITIC)


def open_critic(ref: str | None = None):
    """The critic, opened once per process (composite batches and the page share it): run by
    onnxruntime from its folder's ``model.onnx`` where that is current and onnxruntime is installed
    (no PyTorch imported), else by PyTorch."""
    import importlib.util

    from ..errors import StganError
    from ..model import critic_run as R

    folder = critic_folder(ref)
    with _LOCK:
        if folder not in _CACHE:
            R.read_config(folder)
            net = None
            if (folder / R.ONNX_FILE).is_file() and importlib.util.find_spec("onnxruntime") is not None:
                try:
                    net = R.OnnxCritic(folder)
                except StganError:
                    net = None  # a stale graph: the weights themselves, with PyTorch
            if net is None:
                from ..model.critic import load

                net = load(folder)
            _CACHE[folder] = net
        return _CACHE[folder]


def object_aspect(cutout_rgba: np.ndarray, bg_size) -> float:
    """The cut-out's box aspect in normalised units on a photo of ``bg_size`` (H, W)."""
    h, w = cutout_rgba.shape[:2]
    return (w / bg_size[1]) / (h / bg_size[0])


def photo_input(bg_rgb: np.ndarray) -> np.ndarray:
    """(1, 3, 120, 160) float32: the photo (H, W, 3+, uint8/uint16/float) as the critic reads it."""
    from ..files.imageio import to_unit_float
    from ..model.critic_run import FRAME

    small = cv2.resize(to_unit_float(bg_rgb[..., :3]), (FRAME[1], FRAME[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None], dtype=np.float32)


def object_input(cutout_rgba: np.ndarray) -> np.ndarray:
    """(1, 3, 64, 64) float32: the premultiplied cut-out as the critic reads it."""
    from ..model.critic_run import object_crop

    return np.ascontiguousarray(object_crop(cutout_rgba, premultiplied=True).transpose(2, 0, 1)[None])


def search(critic, bg_rgb: np.ndarray, cutout_rgba: np.ndarray, count: int = 1000,
           width: float | None = None) -> Search:
    """Score about ``count`` candidate boxes for the premultiplied cut-out ``cutout_rgba`` (h, w, 4)
    on the photo ``bg_rgb`` (H, W, 3, uint8/uint16/float); ``width``: every box this share of the
    photo's width (``--scale``)."""
    boxes, cells, grid = B.candidate_boxes(object_aspect(cutout_rgba, bg_rgb.shape[:2]), count, width=width)
    scores = critic.score(photo_input(bg_rgb), object_input(cutout_rgba), boxes.astype(np.float32)).astype(float)
    order = np.argsort(-scores, kind="stable")
    return Search(boxes[order], scores[order], cells[order], grid)


def heatmap(search_: Search, bg_rgb: np.ndarray) -> np.ndarray:
    """The photo (uint8 RGB, its own size) under the critic's map: the best score per position,
    ranked among the positions (dark: the worst, yellow: the best), half opaque, and the chosen box
    in green."""
    from ..files.imageio import to_unit_float

    best = search_.best_per_position()
    finite = np.isfinite(best)
    p = np.zeros_like(best)
    ranks = np.argsort(np.argsort(best[finite]))
    p[finite] = ranks / max(len(ranks) - 1, 1)
    h, w = bg_rgb.shape[:2]
    big = cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    colour = cv2.applyColorMap((big * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    photo = to_unit_float(bg_rgb[..., :3]) * 255
    out = 0.5 * photo + 0.5 * colour
    x1, y1, x2, y2 = (int(round(v)) for v in B.to_pixels(search_.boxes[0], (h, w)))
    out = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
    cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), (80, 255, 80), max(2, round(min(h, w) / 300)))
    return out
