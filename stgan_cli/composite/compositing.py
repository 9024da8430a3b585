"""Placement, warping and blending of a cut-out at full resolution (numpy + OpenCV, no torch).

Conventions are those of :mod:`stgan_cli.core.geometry`: points ``(x, y)``, sizes ``(height, width)``,
homographies named ``<to>_from_<from>`` in pixel frames.  Cut-outs are premultiplied float32 RGBA.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import StganError, UsageError
from ..core.frames import Size, apply_homography, box_corners, rescale_homography
from ..files.imageio import Picture, mask_from_picture, to_unit_float

PRESHRINK_BELOW = 0.7  # warps that shrink more than this are resampled with INTER_AREA first


@dataclass
class Cutout:
    """A foreground cropped to its visible pixels.

    ``rgba`` is premultiplied float32 ``(h, w, 4)``; ``crop_origin`` is the ``(x, y)`` of its top-left
    pixel in the original foreground file, whose size is ``source_size`` ``(H, W)``.
    """

    rgba: np.ndarray
    crop_origin: tuple[int, int]
    source_size: Size

    @property
    def fg_from_crop(self) -> np.ndarray:
        return translation(*self.crop_origin)

    def object_box(self) -> tuple[float, float, float, float]:
        """Outer edges ``x1, y1, x2, y2`` of the visible object in foreground pixels."""
        x, y = self.crop_origin
        h, w = self.rgba.shape[:2]
        return x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5

    @property
    def width(self) -> int:
        return self.rgba.shape[1]


def translation(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0, tx], [0, 1.0, ty], [0, 0, 1.0]])


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """Grey or RGBA ``uint`` pixels to RGB (alpha, if any, is dropped)."""
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, 2)
    return pixels[..., :3]


def make_cutout(fg: Picture, mask: Picture | None = None) -> Cutout:
    """Premultiplied, cropped cut-out from an RGBA foreground or an RGB(/grey) one plus a mask."""
    px = to_unit_float(fg.pixels)
    rgb = as_rgb(px)
    if mask is not None:
        if mask.size != fg.size:
            raise StganError(f"{mask.path}: mask is {mask.size[1]}x{mask.size[0]} but the foreground "
                             f"{fg.path} is {fg.size[1]}x{fg.size[0]}")
        alpha, alpha_src = mask_from_picture(mask), mask.path
    elif fg.channels == 4:
        alpha, alpha_src = px[..., 3], fg.path
    else:
        raise StganError(f"{fg.path}: foreground has no alpha channel; give an RGBA cut-out or --mask")
    ys, xs = np.nonzero(alpha > 0.5 / 255)
    if len(xs) == 0:
        raise StganError(f"{alpha_src}: mask is empty (all transparent)")
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    a = np.ascontiguousarray(alpha[y0:y1, x0:x1])
    rgba = np.empty((y1 - y0, x1 - x0, 4), np.float32)
    np.multiply(rgb[y0:y1, x0:x1], a[..., None], out=rgba[..., :3])
    rgba[..., 3] = a
    return Cutout(rgba, (int(x0), int(y0)), fg.size)


# --- initial placement --------------------------------------------------------------------------

def check_box(box: tuple[float, float, float, float], bg_size: Size) -> None:
    x1, y1, x2, y2 = box
    h, w = bg_size
    if not (x2 > x1 and y2 > y1):
        raise UsageError(f"--box {x1:g},{y1:g},{x2:g},{y2:g}: needs x1 < x2 and y1 < y2")
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        raise StganError(f"--box {x1:g},{y1:g},{x2:g},{y2:g} lies outside the background ({w}x{h})")


def place_in_box(cutout: Cutout, box: tuple[float, float, float, float]) -> np.ndarray:
    """``bg_from_fg`` that fits the object inside ``box`` (x1, y1, x2, y2 in background pixels, pixel
    edges as in libcom), keeping its aspect ratio, centred."""
    ox1, oy1, ox2, oy2 = cutout.object_box()
    bx1, by1, bx2, by2 = box
    s = min((bx2 - bx1) / (ox2 - ox1), (by2 - by1) / (oy2 - oy1))
    return place_at(cutout, ((bx1 + bx2) / 2 - 0.5, (by1 + by2) / 2 - 0.5), s)


def place_at(cutout: Cutout, center: tuple[float, float], s: float) -> np.ndarray:
    """``bg_from_fg`` scaling the object by ``s`` and putting its centre at pixel ``center`` (x, y)."""
    ox1, oy1, ox2, oy2 = cutout.object_box()
    ocx, ocy = (ox1 + ox2) / 2, (oy1 + oy2) / 2
    return translation(*center) @ np.diag([s, s, 1.0]) @ translation(-ocx, -ocy)


def place_scaled(cutout: Cutout, bg_size: Size, center_frac: tuple[float, float], width_frac: float) -> np.ndarray:
    """``bg_from_fg`` with the object's width ``width_frac`` of the background's, centred at the
    fraction ``center_frac`` (x, y) of the background."""
    h, w = bg_size
    center = (center_frac[0] * w - 0.5, center_frac[1] * h - 0.5)
    return place_at(cutout, center, width_frac * w / cutout.width)


# --- warping and blending -----------------------------------------------------------------------

def quad_area(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def projected_corners(dst_from_src: np.ndarray, src_size: Size, what: str = "object") -> np.ndarray:
    """Corners of a ``src_size`` image under the homography; refuses warps that fold the object
    through infinity (a corner behind the camera)."""
    corners = box_corners(src_size)
    z = np.concatenate([corners, np.ones((4, 1))], 1) @ dst_from_src[2]
    if np.any(z <= 1e-9 * np.abs(dst_from_src[2]).sum()) or not np.all(np.isfinite(dst_from_src)):
        raise StganError(f"the {what}'s warp is degenerate (it sends a corner to infinity)")
    return apply_homography(dst_from_src, corners)


MIN_VISIBLE_PIXELS = 4.0  # an object covering less of the frame than 2x2 pixels is not there


def visible_area(bg_from_crop: np.ndarray, crop_size: Size, bg_size: Size) -> float:
    """How many background pixels the warped object's box covers inside the frame."""
    quad = projected_corners(bg_from_crop, crop_size).astype(np.float32)
    if quad_area(quad) < 1e-6:
        return 0.0
    h, w = bg_size
    frame = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], np.float32)
    hull = cv2.convexHull(quad)  # a homography keeps a box convex unless it folds, which projected_corners refuses
    area, _ = cv2.intersectConvexConvex(hull, frame)
    return float(area)


def check_visible(cutout: Cutout, bg_from_fg: np.ndarray, bg_size: Size, what: str) -> None:
    """Refuse a placement that leaves nothing of the object to see: outside the frame, or shrunk
    below a couple of pixels.  ``what`` says which placement (the initial one, the model's)."""
    bg_from_crop = bg_from_fg @ cutout.fg_from_crop
    with np.errstate(all="ignore"):  # a placement far outside overflows float32: it is refused below, not warned about
        area = visible_area(bg_from_crop, cutout.rgba.shape[:2], bg_size)
        if np.isfinite(area) and area >= MIN_VISIBLE_PIXELS:
            return
        quad = projected_corners(bg_from_crop, cutout.rgba.shape[:2])
    h, w = bg_size
    size = quad.max(0) - quad.min(0)
    if np.all(np.isfinite(quad)) and quad_area(quad) < MIN_VISIBLE_PIXELS:
        raise StganError(f"{what} makes the object {size[0]:.2g}x{size[1]:.2g} px: too small to see "
                         f"in the {w}x{h} background")
    raise StganError(f"{what} puts the object outside the {w}x{h} background (centre at "
                     f"{quad.mean(0)[0]:.6g},{quad.mean(0)[1]:.6g}): nothing of it would be visible")


def warp_premultiplied(rgba: np.ndarray, dst_from_src: np.ndarray, out_size: Size, replicate: bool = False) -> np.ndarray:
    """Warp premultiplied ``rgba`` (or any float image) into an ``out_size`` (H, W) frame.

    When the warp shrinks the image a lot, the source is first reduced with area averaging to about
    the output scale, so thin edges do not alias (bilinear sampling alone skips pixels).
    """
    h, w = rgba.shape[:2]
    quad = projected_corners(dst_from_src, (h, w))
    s = np.sqrt(quad_area(quad) / float(h * w))
    if s < PRESHRINK_BELOW:
        sh, sw = max(2, round(h * s)), max(2, round(w * s))
        if (sh, sw) != (h, w):
            rgba = cv2.resize(rgba, (sw, sh), interpolation=cv2.INTER_AREA)
            dst_from_src = dst_from_src @ rescale_homography((sh, sw), (h, w))
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT  # replicate: a background's edge
    return cv2.warpPerspective(rgba, dst_from_src, (out_size[1], out_size[0]), flags=cv2.INTER_LINEAR,
                               borderMode=border, borderValue=(0, 0, 0, 0))


def object_roi(bg_from_crop: np.ndarray, crop_size: Size, bg_size: Size) -> tuple[int, int, int, int] | None:
    """Pixel box ``x0, y0, x1, y1`` (exclusive end) of the background the warped object can touch."""
    quad = projected_corners(bg_from_crop, crop_size)
    x0, y0 = np.floor(quad.min(0)).astype(int) - 1
    x1, y1 = np.ceil(quad.max(0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, bg_size[1]), min(y1, bg_size[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    top = 65535.0 if dtype == np.uint16 else 255.0
    return np.clip(values * top + 0.5, 0, top).astype(dtype)


def over(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Premultiplied ``fg`` (float RGBA, ``(..., 4)``) over an opaque ``bg`` (float RGB)."""
    return fg[..., :3] + bg * (1 - fg[..., 3:4])


def composite(bg: np.ndarray, cutout: Cutout, bg_from_fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp the cut-out by ``bg_from_fg`` (pixels) over ``bg`` (RGB or RGBA, uint8/uint16).

    Returns the composite (same shape and dtype as ``bg``) and the object's alpha in the background
    frame (float32 ``(H, W)``).  Only the object's box is blended: the rest is copied.
    """
    bg_size = bg.shape[:2]
    bg_from_crop = bg_from_fg @ cutout.fg_from_crop
    out = bg.copy()
    alpha_full = np.zeros(bg_size, np.float32)
    roi = object_roi(bg_from_crop, cutout.rgba.shape[:2], bg_size)
    if roi is None:
        return out, alpha_full
    x0, y0, x1, y1 = roi
    warped = warp_premultiplied(cutout.rgba, translation(-x0, -y0) @ bg_from_crop, (y1 - y0, x1 - x0))
    a = warped[..., 3:4]
    under = to_unit_float(bg[y0:y1, x0:x1])
    if under.shape[2] == 4:  # "over" for a background that has transparency of its own
        bg_a = under[..., 3:4]
        out_a = a + bg_a * (1 - a)
        rgb = (warped[..., :3] + under[..., :3] * bg_a * (1 - a)) / np.maximum(out_a, 1e-6)
        blended = np.concatenate([rgb, out_a], 2)
    else:
        blended = over(warped, under)
    out[y0:y1, x0:x1] = _to_dtype(blended, bg.dtype)
    alpha_full[y0:y1, x0:x1] = a[..., 0]
    return out, alpha_full


def lowres_inputs(bg_rgb: np.ndarray, cutout: Cutout, bg_from_fg: np.ndarray, size: Size):
    """What the generators see: the background resized to ``size`` (float32 RGB) and the cut-out
    placed by ``bg_from_fg`` on a canvas of that size (premultiplied float32 RGBA)."""
    bg_size = bg_rgb.shape[:2]
    # Resize before converting: converting a 4K frame to float costs more than the network.
    bg_low = to_unit_float(cv2.resize(bg_rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    low_from_crop = rescale_homography(bg_size, size) @ bg_from_fg @ cutout.fg_from_crop
    fg_low = warp_premultiplied(cutout.rgba, low_from_crop, size)
    return bg_low, fg_low


def strip(images: list[np.ndarray], labels: list[str] | None = None, height: int = 360, gap: int = 4) -> np.ndarray:
    """Side-by-side strip of same-size images, scaled to ``height`` pixels, each with its label
    (if given) written in its top-left corner."""
    h, w = images[0].shape[:2]
    sw = max(1, round(w * height / h))
    tiles = [cv2.resize(im, (sw, height), interpolation=cv2.INTER_AREA) for im in images]
    if labels:
        tiles = [_label(t, text) for t, text in zip(tiles, labels)]
    pad = np.zeros((height, gap) + tiles[0].shape[2:], tiles[0].dtype)
    row = []
    for i, t in enumerate(tiles):
        row += [pad, t] if i else [t]
    return np.concatenate(row, 1)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """``text`` in white on a dark band, sized to the tile; opaque where the tile has alpha."""
    tile = tile.copy()
    top = 65535 if tile.dtype == np.uint16 else 255
    scale = max(0.4, min(tile.shape[0], tile.shape[1]) / 600)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x2, y2 = min(tile.shape[1], tw + 12), min(tile.shape[0], th + base + 10)
    tile[:y2, :x2] = (tile[:y2, :x2] // 3).astype(tile.dtype)
    if tile.ndim == 3 and tile.shape[2] == 4:
        tile[:y2, :x2, 3] = top
    colour = (top,) * (tile.shape[2] if tile.ndim == 3 else 1)
    cv2.putText(tile, text, (6, th + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return tile
