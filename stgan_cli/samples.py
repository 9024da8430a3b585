"""Small procedural sample inputs for the demo: a room in perspective and a cabinet cut-out.

Deterministic and drawn with OpenCV alone, so ``sample_data/`` holds only images this code makes.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from . import imageio


def room(size=(480, 640), seed=0) -> np.ndarray:
    """RGB uint8 room: a painted back wall and a plank floor converging to a vanishing point."""
    h, w = size
    rng = np.random.default_rng(seed)
    horizon = int(h * 0.55)
    img = np.zeros((h, w, 3), np.float32)
    wall = np.array([0.86, 0.80, 0.70]) * (0.85 + 0.15 * np.linspace(1, 0, horizon))[:, None]
    img[:horizon] = wall[:, None, :]
    floor_rows = np.linspace(0.55, 0.95, h - horizon)[:, None]
    img[horizon:] = np.array([0.55, 0.38, 0.22]) * floor_rows[..., None]
    vp = (w * 0.5, h * 0.25)
    for x in np.linspace(-w, 2 * w, 28):  # plank seams towards the vanishing point
        t = (horizon - vp[1]) / (h - vp[1])
        top = (vp[0] + (x - vp[0]) * t, horizon)
        cv2.line(img, (int(top[0]), horizon), (int(x), h), (0.30, 0.20, 0.12), 1, cv2.LINE_AA)
    cv2.line(img, (0, horizon), (w, horizon), (0.45, 0.40, 0.35), 3, cv2.LINE_AA)  # baseboard
    cv2.rectangle(img, (int(w * 0.62), int(h * 0.12)), (int(w * 0.85), int(h * 0.38)), (0.55, 0.70, 0.85), -1)
    cv2.rectangle(img, (int(w * 0.62), int(h * 0.12)), (int(w * 0.85), int(h * 0.38)), (0.95, 0.95, 0.95), 4)
    img += rng.normal(0, 0.012, img.shape).astype(np.float32)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def cabinet(size=(260, 240)) -> np.ndarray:
    """RGBA uint8 cut-out of a two-drawer cabinet seen slightly from the left and above."""
    h, w = size
    img = np.zeros((h, w, 4), np.float32)
    depth = int(w * 0.18)
    front = np.array([[0, depth], [w - depth, depth], [w - depth, h - 1], [0, h - 1]], np.int32)
    side = np.array([[w - depth, depth], [w - 1, 0], [w - 1, h - 1 - depth], [w - depth, h - 1]], np.int32)
    top = np.array([[0, depth], [depth, 0], [w - 1, 0], [w - depth, depth]], np.int32)
    for poly, shade in ((front, 1.0), (side, 0.7), (top, 1.2)):
        cv2.fillPoly(img, [poly], (0.45 * shade, 0.30 * shade, 0.18 * shade, 1.0), cv2.LINE_AA)
    fw, fh = w - depth, h - depth
    for i in range(2):
        y0 = depth + int(fh * (0.08 + 0.46 * i))
        cv2.rectangle(img, (int(fw * 0.08), y0), (int(fw * 0.92), y0 + int(fh * 0.38)), (0.35, 0.23, 0.14, 1), 2)
        cv2.circle(img, (fw // 2, y0 + int(fh * 0.19)), 5, (0.8, 0.75, 0.6, 1), -1, cv2.LINE_AA)
    img[..., :3] = np.clip(img[..., :3], 0, 1)
    return np.round(img * 255).astype(np.uint8)


def write(folder: str | Path) -> dict:
    """Write ``room.png``, ``cabinet.png`` and ``cabinet_placement.json`` (where it was meant to stand)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    imageio.write_image(folder / "room.png", room())
    imageio.write_image(folder / "cabinet.png", cabinet())
    truth = {"box": [120, 250, 330, 470], "note": "x1,y1,x2,y2 in room.png pixels: standing on the floor"}
    (folder / "cabinet_placement.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth
