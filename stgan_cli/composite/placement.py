"""Where the cut-out starts: the user's box, point, saved warp or the model's default placement in
the whole background, or the glasses on each face's aligned frame (a slot per placement)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import compositing
from ..core import frames
from ..files import imageio
from ..errors import StganError
from ..model.config import Placement


@dataclass
class Slot:
    """One placement the generators correct: in the whole background, or in one face's aligned frame.

    ``frame_from_image`` maps background pixels into the frame (identity for the whole background),
    ``frame_size`` is the frame's (H, W), ``frame_from_fg`` the initial placement of the cut-out in it.
    """

    frame_from_image: np.ndarray
    frame_size: tuple[int, int]
    frame_from_fg: np.ndarray
    bg_low: np.ndarray | None = None
    fg_low: np.ndarray | None = None
    face: dict | None = None
    # the same two at the model's detail resolution (model.detail), where its window is read
    bg_detail: np.ndarray | None = None
    fg_detail: np.ndarray | None = None

    def detail_inputs(self, size) -> tuple[np.ndarray, np.ndarray]:
        """``bg_detail`` and ``fg_detail``, or the frame's two upsampled to ``size`` when the slot has
        none (a face's frame, made at the frame's size)."""
        if self.bg_detail is not None:
            return self.bg_detail, self.fg_detail
        up = lambda a: cv2.resize(a, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)  # noqa: E731
        return up(self.bg_low), up(self.fg_low)

    def initial(self) -> np.ndarray:
        """``bg_from_fg`` (background pixels) of the cut-out as first placed."""
        return self._to_image(self.frame_from_fg)

    def corrected(self, p: np.ndarray) -> np.ndarray:
        """``bg_from_fg`` (background pixels) of the cut-out after the warp ``p`` of its frame."""
        return self._to_image(frames.bg_from_fg_pixels(p, self.frame_size, self.frame_from_fg))

    def _to_image(self, frame_from_fg: np.ndarray) -> np.ndarray:
        m = np.linalg.inv(self.frame_from_image) @ frame_from_fg
        return m / m[2, 2]


def _size(entry, key: str) -> tuple[int, int]:
    h, w = entry[key]["height"], entry[key]["width"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, w)):
        raise ValueError(f"{key} must be positive whole numbers, got {h!r}x{w!r}")
    return h, w


def read_init(path: Path, fg_size, bg_size) -> np.ndarray:
    """``bg_from_fg`` from a sidecar written by ``--save-warp``, rescaled if the background's size
    changed; a background of another shape (aspect ratio) is refused, never stretched."""
    from ..files.smalltext import read_text

    text = read_text(path, "stgan warp file (JSON)")
    try:
        data = json.loads(text)
        m = np.array(data["homography"], dtype=np.float64).reshape(3, 3)
        saved_fg, saved_bg = _size(data, "foreground_size"), _size(data, "background_size")
        if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
            raise ValueError("the homography is not finite and invertible")
    except RecursionError:
        raise StganError(f"{path}: not a stgan warp file (nested too deeply)") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StganError(f"{path}: not a stgan warp file ({type(exc).__name__}: {str(exc)[:200]})") from None
    if tuple(saved_fg) != tuple(fg_size):
        raise StganError(f"{path}: was made for a {saved_fg[1]}x{saved_fg[0]} foreground, "
                         f"this one is {fg_size[1]}x{fg_size[0]}")
    (sh, sw), (bh, bw) = saved_bg, bg_size
    if abs(sw / sh - bw / bh) > 0.01 * (sw / sh) + 1.0 / min(bh, sh):  # rounding of a resize only
        raise StganError(f"{path}: was made for a {sw}x{sh} background, this one is {bw}x{bh} "
                         "(another shape: the placement would be stretched)")
    return frames.rescale_homography(saved_bg, bg_size) @ m


def initial_placement(cutout: compositing.Cutout, bg_size, o, default: Placement) -> np.ndarray:
    """``bg_from_fg`` of the cut-out before any correction, from the options ``o`` (``--init``,
    ``--box``, ``--at``/``--scale``), else the model's ``default`` placement."""
    if o.init is not None:
        return read_init(o.init, cutout.source_size, bg_size)
    if o.box is not None:
        compositing.check_box(o.box, bg_size)
        return compositing.place_in_box(cutout, o.box)
    if o.at is not None:
        scale = o.scale if o.scale is not None else default.scale
        return compositing.place_at(cutout, o.at, scale * bg_size[1] / cutout.width)
    if tuple(cutout.source_size) == tuple(bg_size) and o.scale is None:
        return np.eye(3)  # a canvas the size of the background is already placed
    scale = o.scale if o.scale is not None else default.scale
    return compositing.place_scaled(cutout, bg_size, default.center, scale)


def face_slots(bg_path: Path, bg: imageio.Picture, cutout: compositing.Cutout, frame_size, which: str,
               lowres: bool, detector: str = "auto", skip_glasses_faces: bool = False) -> tuple[list[Slot], list[str]]:
    """One slot per face (``which``: all | largest): the aligned face frame, and the glasses' lenses
    placed on its eyes; with ``lowres``, the frame and the glasses as the generators see them.  Faces
    that already wear glasses are left out with ``skip_glasses_faces``, and reported either way: the
    second value is the notes for the user."""
    from . import faces

    found = faces.detect_faces(bg.pixels[..., :3], detector)
    if not found:
        raise StganError(f"{bg_path}: no face found")
    if which == "largest":
        found = found[:1]
    notes = []
    worn = [k for k, f in enumerate(found) if f.glasses]
    if worn:
        which_faces = "face " + ", ".join(str(k + 1) for k in worn)  # largest first
        if skip_glasses_faces:
            found = [f for f in found if not f.glasses]
            if not found:
                raise StganError(f"{bg_path}: every face found already wears glasses (--skip-glasses-faces)")
            notes.append(f"{bg_path}: left {which_faces} as it is: it already wears glasses")
        else:
            notes.append(f"{bg_path}: {which_faces} already wears glasses and gets a second pair "
                         "(--skip-glasses-faces leaves such faces)")
    eyes = faces.canonical_eyes(frame_size)
    lenses = faces.lens_centres(cutout.rgba[..., 3])
    if lenses is None:  # no enclosed lenses: the middles of the cut-out's left and right halves
        h, w = cutout.rgba.shape[:2]
        lenses = np.array([[0.25 * (w - 1), 0.45 * (h - 1)], [0.75 * (w - 1), 0.45 * (h - 1)]])
    frame_from_fg = faces.similarity(lenses + cutout.crop_origin, eyes)
    slots = []
    for face in found:
        frame_from_image = faces.similarity(faces.glasses_anchor(face), eyes)
        slot = Slot(frame_from_image, frame_size, frame_from_fg,
                    face=face.summary())
        if lowres:
            bg_f = imageio.to_unit_float(bg.pixels[..., :3])
            slot.bg_low = compositing.warp_premultiplied(bg_f, frame_from_image, frame_size, replicate=True)
            slot.fg_low = compositing.warp_premultiplied(cutout.rgba, frame_from_fg @ cutout.fg_from_crop,
                                                         frame_size)
        slots.append(slot)
    return slots, notes
