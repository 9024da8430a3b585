"""Procedural indoor scenes: a room seen by a perspective camera, with one piece of furniture on the floor.

Everything is ray-cast per pixel with numpy: the room is an axis-aligned box (floor, ceiling, four
walls) and the furniture is a set of boxes in its own frame, rotated about the vertical axis, so
perspective, occlusion and contact with the floor are exact.  The furniture is rendered on its own
transparent canvas the size of the background (the "object at its true pose" of a paired dataset).

World frame: metres, ``y`` up, the camera looking roughly along ``+z``; the floor is ``y = 0``.
Image conventions are the project's (pixel centres at integers, sizes ``(height, width)``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

FLOOR, CEILING, LEFT, RIGHT, BACK, FRONT = range(6)
CATEGORIES = ("cabinet", "bed", "table", "bookshelf", "sofa", "chair")


# --- camera ------------------------------------------------------------------------------------

@dataclass
class Camera:
    position: tuple[float, float, float]
    yaw: float  # radians, about +y; 0 looks along +z
    pitch: float  # radians; negative looks down
    focal: float  # pixels
    size: tuple[int, int]  # (height, width)

    @property
    def rotation(self) -> np.ndarray:
        """``world_from_camera`` rotation (camera: x right, y up, z forward)."""
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
        return r_yaw @ r_pitch

    def rays(self, ss: int = 1, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """World ray directions ``(h, w, 3)`` through pixel centres, ``ss`` x ``ss`` per pixel, of
        the pixel ``window`` ``x0, y0, x1, y1`` (default: the whole image)."""
        h, w = self.size
        x0, y0, x1, y1 = window or (0, 0, w, h)
        us = x0 - 0.5 + (np.arange((x1 - x0) * ss) + 0.5) / ss
        vs = y0 - 0.5 + (np.arange((y1 - y0) * ss) + 0.5) / ss
        cx, cy = (w - 1) / 2, (h - 1) / 2
        u, v = np.meshgrid((us - cx) / self.focal, -(vs - cy) / self.focal)
        d = np.stack([u, v, np.ones_like(u)], -1) @ self.rotation.T
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel ``(x, y)`` of world points ``(N, 3)``; points behind the camera give NaN."""
        d = (np.asarray(points, float) - self.position) @ self.rotation
        z = np.where(d[:, 2] > 1e-6, d[:, 2], np.nan)
        h, w = self.size
        return np.stack([(w - 1) / 2 + self.focal * d[:, 0] / z, (h - 1) / 2 - self.focal * d[:, 1] / z], 1)


# --- procedural textures (all vectorised over arrays of plane coordinates) -----------------------

def _hash(ix, iy, seed):
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (seed * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF) / 65535.0


def value_noise(u, v, scale, seed):
    """Smooth noise in [0, 1] with features of size ``scale`` (plane units)."""
    x, y = u / scale, v / scale
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy, seed), _hash(ix + 1, iy, seed)
    c, d = _hash(ix, iy + 1, seed), _hash(ix + 1, iy + 1, seed)
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _line(coord, period, width):
    """1 on thin lines every ``period`` (soft-edged), 0 elsewhere."""
    d = np.abs((coord / period + 0.5) % 1.0 - 0.5) * period
    return np.clip(1 - d / width, 0, 1)


def texture(kind: str, u, v, base, rng_seed: int, params: dict) -> np.ndarray:
    """RGB ``(..., 3)`` of material ``kind`` at plane coordinates ``u, v`` (metres)."""
    base = np.asarray(base, float)
    if kind == "wood_planks":
        pw, pl = params["plank_width"], params["plank_length"]
        row = np.floor(u / pw)
        offset = _hash(row, row * 0 + 7, rng_seed) * pl
        col = np.floor((v + offset) / pl)
        tone = 0.85 + 0.3 * _hash(row, col, rng_seed)
        grain = 0.92 + 0.08 * np.sin((u * 40 + 3 * value_noise(u, v, 0.3, rng_seed)) * 2 * np.pi)
        seam = np.maximum(_line(u, pw, 0.006), _line(v + offset, pl, 0.006) * 0.8)
        shade = tone * grain * (1 - 0.55 * seam)
    elif kind == "tiles":
        s = params["tile"]
        tone = 0.93 + 0.1 * _hash(np.floor(u / s), np.floor(v / s), rng_seed)
        grout = np.maximum(_line(u, s, 0.006), _line(v, s, 0.006))
        shade = tone * (1 - 0.35 * grout) + 0.03 * value_noise(u, v, 0.05, rng_seed)
    elif kind == "carpet":
        shade = 0.85 + 0.2 * value_noise(u, v, 0.02, rng_seed) + 0.1 * value_noise(u, v, 0.4, rng_seed + 1)
    elif kind == "wallpaper_stripes":
        stripe = (np.floor(u / params["stripe"]) % 2)
        shade = 0.92 + 0.1 * stripe + 0.02 * value_noise(u, v, 0.5, rng_seed)
    elif kind == "wallpaper_dots":
        s = params["dot"]
        du, dv = (u / s) % 1 - 0.5, (v / s + 0.5 * (np.floor(u / s) % 2)) % 1 - 0.5
        dot = np.clip(1 - (np.hypot(du, dv) - 0.15) / 0.05, 0, 1)
        shade = 1.0 - 0.18 * dot
    elif kind == "fabric":
        shade = 0.9 + 0.12 * value_noise(u, v, 0.015, rng_seed) + 0.06 * value_noise(u, v, 0.2, rng_seed + 1)
    elif kind == "wood":
        shade = 0.88 + 0.1 * np.sin((u * 25 + 4 * value_noise(u, v, 0.4, rng_seed)) * 2 * np.pi) ** 2
    else:  # paint, metal and anything plain
        shade = 0.97 + 0.05 * value_noise(u, v, 1.5, rng_seed)
    return np.clip(base * shade[..., None], 0, 1)


# --- scene description -------------------------------------------------------------------------

@dataclass
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    color: tuple[float, float, float]
    material: str = "wood"


@dataclass
class Furniture:
    category: str
    boxes: list[Box]
    position: tuple[float, float]  # (x, z) on the floor
    yaw: float

    @property
    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.min([b.lo for b in self.boxes], 0)
        hi = np.max([b.hi for b in self.boxes], 0)
        return lo, hi

    def world_from_local(self) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]), np.array([self.position[0], 0.0, self.position[1]])

    def corners(self) -> np.ndarray:
        """The 8 world corners of the bounding box: bottom face first (y = 0), each face in the order
        (-x,-z), (+x,-z), (+x,+z), (-x,+z) of the object's own frame."""
        lo, hi = self.extent
        xz = [(lo[0], lo[2]), (hi[0], lo[2]), (hi[0], hi[2]), (lo[0], hi[2])]
        local = np.array([(x, y, z) for y in (lo[1], hi[1]) for x, z in xz])
        rot, t = self.world_from_local()
        return local @ rot.T + t


@dataclass
class Room:
    width: float
    depth: float
    height: float
    floor: str
    floor_color: tuple
    wall: str
    wall_color: tuple
    accent_wall: int | None
    accent_color: tuple
    light: tuple[float, float, float]
    ambient: float
    tint: tuple[float, float, float]
    texture_params: dict
    decals: list = field(default_factory=list)  # (plane, u0, v0, u1, v1, kind, colour)
    seed: int = 0

    @property
    def bounds(self):
        return (-self.width / 2, self.width / 2), (0.0, self.height), (0.0, self.depth)


@dataclass
class Scene:
    room: Room
    camera: Camera
    furniture: Furniture
    # How much the floor darkens under the furniture's footprint (0 = no contact shadow).  The room
    # is rendered without the furniture but keeps this shadow, as a photo keeps an object's shadow
    # when the object is cut out: it is the cue that says where on the floor the object stood.
    shadow: float = 0.0

    def meta(self) -> dict:
        lo, hi = self.furniture.extent
        corners = self.camera.project(self.furniture.corners())
        cam = self.camera
        return {
            "category": self.furniture.category,
            "camera": {"position": list(cam.position), "yaw": cam.yaw, "pitch": cam.pitch, "focal": cam.focal,
                       "height": cam.position[1]},
            "image_size": list(cam.size),
            "box3d": {"center": [self.furniture.position[0], (lo[1] + hi[1]) / 2, self.furniture.position[1]],
                      "size": (hi - lo).tolist(), "yaw": self.furniture.yaw},
            "corners": corners.round(3).tolist(),
            "contact_shadow": round(self.shadow, 3),
            "room": {k: v for k, v in asdict(self.room).items() if k in ("width", "depth", "height", "floor", "wall")},
        }


# --- random scene ------------------------------------------------------------------------------

PALETTES = {
    "wood": [(0.55, 0.36, 0.2), (0.42, 0.27, 0.15), (0.7, 0.52, 0.33), (0.3, 0.2, 0.12), (0.78, 0.66, 0.5)],
    "fabric": [(0.35, 0.4, 0.55), (0.55, 0.2, 0.2), (0.3, 0.45, 0.3), (0.6, 0.58, 0.52), (0.25, 0.25, 0.28),
               (0.75, 0.6, 0.35)],
    "paint": [(0.9, 0.88, 0.82), (0.85, 0.8, 0.7), (0.75, 0.82, 0.85), (0.82, 0.85, 0.75), (0.9, 0.8, 0.78),
              (0.7, 0.7, 0.72)],
    "floor": {"wood_planks": [(0.6, 0.42, 0.25), (0.45, 0.3, 0.18), (0.75, 0.6, 0.42)],
              "tiles": [(0.8, 0.78, 0.74), (0.55, 0.55, 0.58), (0.7, 0.6, 0.5)],
              "carpet": [(0.5, 0.45, 0.4), (0.35, 0.38, 0.45), (0.6, 0.55, 0.45)]},
}


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _jitter(rng, color, amount=0.06):
    return tuple(float(np.clip(c + rng.normal(0, amount), 0.05, 0.95)) for c in color)


def random_room(rng) -> Room:
    floor = _pick(rng, ["wood_planks", "tiles", "carpet"])
    wall = _pick(rng, ["paint", "paint", "wallpaper_stripes", "wallpaper_dots"])
    w, d, h = rng.uniform(3.6, 6.0), rng.uniform(4.5, 7.5), rng.uniform(2.5, 3.0)
    params = {"plank_width": rng.uniform(0.12, 0.22), "plank_length": rng.uniform(0.9, 1.8),
              "tile": rng.uniform(0.3, 0.6), "stripe": rng.uniform(0.08, 0.2), "dot": rng.uniform(0.12, 0.25)}
    decals = []
    for plane in (BACK, LEFT, RIGHT):
        if rng.random() < 0.45:  # a window, a door or a picture frame
            kind = _pick(rng, ["window", "door", "frame"])
            span = w if plane == BACK else d
            if kind == "door":
                wd, hd, v0 = rng.uniform(0.8, 1.0), rng.uniform(2.0, 2.2), 0.0
            elif kind == "window":
                wd, hd, v0 = rng.uniform(0.9, 1.6), rng.uniform(1.0, 1.4), rng.uniform(0.8, 1.0)
            else:
                wd, hd, v0 = rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.7), rng.uniform(1.3, 1.6)
            lo_u = -span / 2 if plane == BACK else 0.0
            u0 = rng.uniform(lo_u + 0.3, lo_u + span - wd - 0.3)
            decals.append((plane, u0, v0, u0 + wd, v0 + hd, kind, _jitter(rng, _pick(rng, PALETTES["fabric"]), 0.1)))
    return Room(
        width=w, depth=d, height=h, floor=floor, floor_color=_jitter(rng, _pick(rng, PALETTES["floor"][floor]), 0.03),
        wall=wall, wall_color=_jitter(rng, _pick(rng, PALETTES["paint"]), 0.03),
        accent_wall=int(rng.choice([LEFT, RIGHT, BACK])) if rng.random() < 0.25 else None,
        accent_color=_jitter(rng, _pick(rng, PALETTES["paint"]), 0.1),
        light=(rng.uniform(-w / 4, w / 4), h - 0.05, rng.uniform(d * 0.3, d * 0.7)),
        ambient=rng.uniform(0.45, 0.6), tint=tuple(1 + rng.normal(0, 0.03, 3)), texture_params=params,
        decals=decals, seed=int(rng.integers(1 << 30)))


def random_camera(rng, room: Room, size) -> Camera:
    h, w = size
    fov = math.radians(rng.uniform(55, 75))
    focal = (w / 2) / math.tan(fov / 2)
    pos = (rng.uniform(-room.width / 6, room.width / 6), rng.uniform(1.1, 1.8), rng.uniform(0.2, 0.6))
    return Camera(pos, math.radians(rng.uniform(-20, 20)), math.radians(rng.uniform(-24, -8)), focal, (h, w))


def random_furniture(rng, category: str) -> list[Box]:
    """Boxes in the object's frame (x width, y up from the floor, z depth; the front faces -z)."""
    wood = _jitter(rng, _pick(rng, PALETTES["wood"]))
    fabric = _jitter(rng, _pick(rng, PALETTES["fabric"]))
    boxes: list[Box] = []
    add = lambda lo, hi, col, mat="wood": boxes.append(Box(tuple(lo), tuple(hi), tuple(col), mat))
    darker = tuple(c * 0.8 for c in wood)
    if category == "cabinet":
        w, h, d = rng.uniform(0.6, 1.3), rng.uniform(0.7, 1.2), rng.uniform(0.4, 0.6)
        add((-w / 2, 0.08, -d / 2), (w / 2, h, d / 2), wood)
        add((-w / 2 + 0.03, 0, -d / 2 + 0.03), (w / 2 - 0.03, 0.08, d / 2 - 0.03), darker)  # plinth
        n = int(rng.integers(2, 5))
        step = (h - 0.14) / n
        for i in range(n):  # drawer fronts and handles stand proud of the body
            y0 = 0.1 + i * step
            add((-w / 2 + 0.03, y0 + 0.01, -d / 2 - 0.015), (w / 2 - 0.03, y0 + step - 0.01, -d / 2), wood)
            add((-0.06, y0 + step / 2 - 0.012, -d / 2 - 0.04), (0.06, y0 + step / 2 + 0.012, -d / 2 - 0.015),
                (0.75, 0.72, 0.65), "metal")
    elif category == "bed":
        w, l = rng.uniform(1.3, 1.9), rng.uniform(1.9, 2.15)
        add((-w / 2, 0.1, -l / 2), (w / 2, 0.35, l / 2), wood)
        for sx in (-1, 1):
            for sz in (-1, 1):
                add((sx * w / 2 - (0.06 if sx > 0 else 0), 0, sz * l / 2 - (0.06 if sz > 0 else 0)),
                    (sx * w / 2 + (0.06 if sx < 0 else 0), 0.1, sz * l / 2 + (0.06 if sz < 0 else 0)), darker)
        add((-w / 2 + 0.03, 0.35, -l / 2 + 0.03), (w / 2 - 0.03, 0.55, l / 2 - 0.03), _jitter(rng, (0.9, 0.9, 0.88)),
            "fabric")
        add((-w / 2, 0, l / 2 - 0.08), (w / 2, rng.uniform(0.9, 1.2), l / 2), wood)  # headboard
        add((-w / 2 + 0.03, 0.55, -l / 2 + 0.03), (w / 2 - 0.03, 0.6, 0.1 * l), fabric, "fabric")  # cover
        for sx in (-1, 1):
            add((sx * w / 4 - 0.28, 0.55, l / 2 - 0.5), (sx * w / 4 + 0.28, 0.68, l / 2 - 0.12),
                _jitter(rng, (0.95, 0.95, 0.93)), "fabric")
    elif category == "table":
        w, d, h, t = rng.uniform(0.8, 1.7), rng.uniform(0.6, 1.0), rng.uniform(0.7, 0.78), rng.uniform(0.03, 0.06)
        add((-w / 2, h - t, -d / 2), (w / 2, h, d / 2), wood)
        leg, inset = rng.uniform(0.04, 0.08), rng.uniform(0.02, 0.08)
        for sx in (-1, 1):
            for sz in (-1, 1):
                cx, cz = sx * (w / 2 - inset - leg / 2), sz * (d / 2 - inset - leg / 2)
                add((cx - leg / 2, 0, cz - leg / 2), (cx + leg / 2, h - t, cz + leg / 2), darker)
        add((-w / 2 + inset, h - t - 0.08, -d / 2 + inset), (w / 2 - inset, h - t, -d / 2 + inset + 0.02), darker)
    elif category == "bookshelf":
        w, h, d, t = rng.uniform(0.6, 1.1), rng.uniform(1.4, 2.0), rng.uniform(0.28, 0.38), 0.025
        add((-w / 2, 0, -d / 2), (-w / 2 + t, h, d / 2), wood)
        add((w / 2 - t, 0, -d / 2), (w / 2, h, d / 2), wood)
        add((-w / 2, 0, d / 2 - 0.01), (w / 2, h, d / 2), darker)  # back panel
        shelves = int(rng.integers(4, 7))
        for i in range(shelves + 1):
            y = i * (h - t) / shelves
            add((-w / 2 + t, y, -d / 2), (w / 2 - t, y + t, d / 2 - 0.01), wood)
            if i < shelves:  # a row of books
                x = -w / 2 + t + 0.01
                top = (h - t) / shelves - t - 0.02
                while x < w / 2 - t - 0.04:
                    bw = rng.uniform(0.02, 0.05)
                    bh = rng.uniform(0.6, 0.95) * top
                    bd = rng.uniform(0.6, 0.9) * (d - 0.02)
                    if rng.random() < 0.85:
                        add((x, y + t, d / 2 - 0.01 - bd), (min(x + bw, w / 2 - t - 0.005), y + t + bh, d / 2 - 0.01),
                            _jitter(rng, _pick(rng, PALETTES["fabric"]), 0.12), "book")
                    x += bw + 0.002
    elif category == "sofa":
        w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 1.0)
        seat_h, back_h, arm = rng.uniform(0.4, 0.48), rng.uniform(0.75, 0.95), rng.uniform(0.12, 0.22)
        add((-w / 2, 0.06, -d / 2), (w / 2, seat_h - 0.1, d / 2), fabric, "fabric")
        add((-w / 2, 0.06, d / 2 - 0.2), (w / 2, back_h, d / 2), fabric, "fabric")
        for sx in (-1, 1):
            x0, x1 = (-w / 2, -w / 2 + arm) if sx < 0 else (w / 2 - arm, w / 2)
            add((x0, 0.06, -d / 2), (x1, seat_h + 0.15, d / 2), fabric, "fabric")
        n = 2 if w < 1.9 else 3
        cw = (w - 2 * arm) / n
        for i in range(n):
            add((-w / 2 + arm + i * cw + 0.01, seat_h - 0.1, -d / 2 + 0.02), (-w / 2 + arm + (i + 1) * cw - 0.01,
                seat_h, d / 2 - 0.2), _jitter(rng, fabric, 0.03), "fabric")
        for sx in (-1, 1):
            for sz in (-1, 1):
                add((sx * (w / 2 - 0.08) - 0.03, 0, sz * (d / 2 - 0.08) - 0.03),
                    (sx * (w / 2 - 0.08) + 0.03, 0.06, sz * (d / 2 - 0.08) + 0.03), darker)
    elif category == "chair":
        w, d, seat_h = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.55), rng.uniform(0.43, 0.48)
        leg, back_h = 0.035, rng.uniform(0.8, 1.0)
        add((-w / 2, seat_h - 0.04, -d / 2), (w / 2, seat_h, d / 2), wood)
        for sx in (-1, 1):
            for sz in (-1, 1):
                cx, cz = sx * (w / 2 - leg / 2), sz * (d / 2 - leg / 2)
                top = back_h if sz > 0 else seat_h - 0.04
                add((cx - leg / 2, 0, cz - leg / 2), (cx + leg / 2, top, cz + leg / 2), darker)
        for y0 in (seat_h + 0.2, back_h - 0.12):
            add((-w / 2 + leg, y0, d / 2 - leg), (w / 2 - leg, y0 + 0.1, d / 2), wood)
        if rng.random() < 0.5:
            add((-w / 2 + 0.02, seat_h, -d / 2 + 0.02), (w / 2 - 0.02, seat_h + 0.04, d / 2 - 0.04), fabric, "fabric")
    else:
        raise ValueError(f"unknown category {category}")
    return boxes


def random_scene(rng, size, categories=CATEGORIES, tries: int = 60) -> Scene:
    """A room, a camera and one piece of furniture standing on the floor, wholly inside the frame."""
    h, w = size
    for _ in range(tries):
        room = random_room(rng)
        camera = random_camera(rng, room, size)
        category = _pick(rng, list(categories))
        boxes = random_furniture(rng, category)
        for _ in range(15):
            yaw_to_camera = rng.uniform(-0.7, 0.7)
            furn = Furniture(category, boxes, (0.0, 0.0), 0.0)
            lo, hi = furn.extent
            radius = math.hypot(max(-lo[0], hi[0]), max(-lo[2], hi[2]))
            (xl, xr), _, (_, zb) = room.bounds
            if xr - xl < 2 * radius + 0.2 or zb - camera.position[2] < 2 * radius + 1.2:
                break
            x = rng.uniform(xl + radius + 0.05, xr - radius - 0.05)
            z = rng.uniform(camera.position[2] + radius + 1.0, zb - radius - 0.05)
            if rng.random() < 0.4:  # against the back or a side wall, as furniture often stands
                x = _pick(rng, [xl + radius + 0.02, xr - radius - 0.02, x])
            bearing = math.atan2(camera.position[0] - x, camera.position[2] - z)
            furn = Furniture(category, boxes, (x, z), bearing + math.pi + yaw_to_camera)
            corners = camera.project(furn.corners())
            if np.isnan(corners).any():
                continue
            x0, y0 = corners.min(0)
            x1, y1 = corners.max(0)
            margin = 0.03 * w
            if x0 < margin or y0 < margin or x1 > w - 1 - margin or y1 > h - 1 - margin:
                continue
            if (x1 - x0) < 0.15 * w or (y1 - y0) < 0.15 * h:
                continue
            return Scene(room, camera, furn)
    raise RuntimeError("could not place furniture in view; widen the camera ranges")


# --- rendering ---------------------------------------------------------------------------------

def _room_hit(room: Room, origin: np.ndarray, d: np.ndarray):
    """Distance to the room's surface along each ray, and which plane it hits."""
    (xl, xr), (y0, y1), (z0, z1) = room.bounds
    planes = [(1, y0), (1, y1), (0, xl), (0, xr), (2, z1), (2, z0)]  # FLOOR..FRONT
    ts = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, value in planes:
            t = (value - origin[axis]) / d[..., axis]
            ts.append(np.where(t > 1e-6, t, np.inf))
    ts = np.stack(ts, -1)
    plane = ts.argmin(-1)
    return np.take_along_axis(ts, plane[..., None], -1)[..., 0], plane


def _shade(points, normals, room: Room, occlusion=None) -> np.ndarray:
    lx, ly, lz = room.light
    to_light = np.array([lx, ly, lz]) - points
    dist = np.linalg.norm(to_light, axis=-1)
    lambert = np.clip((normals * to_light).sum(-1) / np.maximum(dist, 1e-6), 0, 1)
    falloff = 1.0 / (1.0 + (dist / 3.5) ** 2)
    light = room.ambient * 0.75 + (1 - room.ambient * 0.5) * lambert * falloff * 1.6
    if occlusion is not None:
        light = light * occlusion
    return light[..., None] * np.array(room.tint)


def _footprint_shadow(furn: Furniture, p: np.ndarray) -> np.ndarray:
    """1 under the furniture's footprint, falling off over ~10 cm outside it (soft contact shadow)."""
    rot, t = furn.world_from_local()
    local = (p - t) @ rot  # rows are points; rot is orthonormal, so this applies rot.T
    lo, hi = furn.extent
    dx = np.maximum(np.maximum(lo[0] - local[..., 0], local[..., 0] - hi[0]), 0)
    dz = np.maximum(np.maximum(lo[2] - local[..., 2], local[..., 2] - hi[2]), 0)
    return np.exp(-np.hypot(dx, dz) / 0.1)


def render_background(scene: Scene, ss: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The room without the furniture: RGB float32 ``(H, W, 3)`` in [0, 1] and the plane id of
    every pixel (``FLOOR``, ``LEFT``, ...)."""
    room, cam = scene.room, scene.camera
    d = cam.rays(ss)
    origin = np.array(cam.position)
    t, plane = _room_hit(room, origin, d)
    p = origin + d * t[..., None]
    (xl, xr), (_, yh), (_, zb) = room.bounds
    color = np.zeros(d.shape, np.float32)
    normals = np.zeros(d.shape)
    normal_of = {FLOOR: (0, 1, 0), CEILING: (0, -1, 0), LEFT: (1, 0, 0), RIGHT: (-1, 0, 0), BACK: (0, 0, -1),
                 FRONT: (0, 0, 1)}
    # Plane coordinates (u along the surface, v up the walls or along the floor's depth).
    uv = {FLOOR: (0, 2), CEILING: (0, 2), LEFT: (2, 1), RIGHT: (2, 1), BACK: (0, 1), FRONT: (0, 1)}
    tp = room.texture_params
    for pid in range(6):
        sel = plane == pid
        if not sel.any():
            continue
        normals[sel] = normal_of[pid]
        u, v = p[sel][:, uv[pid][0]], p[sel][:, uv[pid][1]]
        if pid == FLOOR:
            rgb = texture(room.floor, u, v, room.floor_color, room.seed, tp)
        elif pid == CEILING:
            rgb = texture("paint", u, v, (0.93, 0.93, 0.91), room.seed, tp)
        else:
            wall_rgb = room.accent_color if pid == room.accent_wall else room.wall_color
            rgb = texture(room.wall, u, v, wall_rgb, room.seed + pid, tp)
            base = v < 0.09  # skirting board
            rgb[base] = texture("paint", u[base], v[base], (0.92, 0.9, 0.86), room.seed, tp) * 0.9
            for dplane, u0, v0, u1, v1, kind, col in room.decals:
                if dplane != pid:
                    continue
                inside = (u > u0) & (u < u1) & (v > v0) & (v < v1)
                frame = inside & ~((u > u0 + 0.05) & (u < u1 - 0.05) & (v > v0 + 0.05) & (v < v1 - 0.05))
                if kind == "window":
                    sky = np.array([0.75, 0.85, 0.95]) + 0.05 * (v[inside] - v0)[:, None]
                    rgb[inside] = np.clip(sky * 1.1, 0, 1)
                    rgb[frame] = (0.95, 0.95, 0.95)
                elif kind == "door":
                    rgb[inside] = texture("wood", u[inside], v[inside], (0.6, 0.45, 0.3), room.seed, tp)
                    rgb[frame] = (0.9, 0.88, 0.85)
                else:
                    rgb[inside] = np.array(col)[None] * (0.7 + 0.3 * value_noise(u[inside], v[inside], 0.1, 5))[:, None]
                    rgb[frame] = (0.35, 0.25, 0.15)
        color[sel] = rgb
    # Darken towards the room's edges, where surfaces meet (a cheap ambient occlusion).
    gap = np.minimum.reduce([p[..., 0] - xl, xr - p[..., 0], p[..., 1] + np.where(plane == FLOOR, 9, 0),
                             np.where(plane == CEILING, 9, yh - p[..., 1]), zb - p[..., 2]])
    occlusion = 1 - 0.28 * np.exp(-np.maximum(gap, 0) / 0.25)
    floor_gap = np.where(plane == FLOOR, 9.0, p[..., 1])
    occlusion *= 1 - 0.2 * np.exp(-np.maximum(floor_gap, 0) / 0.15)
    if scene.shadow > 0:
        occlusion *= 1 - np.where(plane == FLOOR, scene.shadow * _footprint_shadow(scene.furniture, p), 0.0)
    rgb = np.clip(color * _shade(p, normals, room, occlusion), 0, 1).astype(np.float32)
    if ss > 1:
        h, w = cam.size
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        plane = plane[ss // 2::ss, ss // 2::ss]
    return rgb, plane


def render_object(scene: Scene, ss: int = 2) -> np.ndarray:
    """The furniture alone on a transparent canvas the size of the image: RGBA float32 (straight alpha)."""
    cam, furn = scene.camera, scene.furniture
    h, w = cam.size
    corners = cam.project(furn.corners())
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (w, h))
    out = np.zeros((h, w, 4), np.float32)
    d = cam.rays(ss, (x0, y0, x1, y1))
    rot, trans = furn.world_from_local()
    o_local = (np.array(cam.position) - trans) @ rot
    d_local = d @ rot
    depth = np.full(d.shape[:2], np.inf)
    rgb = np.zeros(d.shape, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_all = 1.0 / d_local
        for k, box in enumerate(furn.boxes):
            lo, hi = np.array(box.lo), np.array(box.hi)
            # Only the rays through this box's own projection (books and legs are a few pixels).
            local = np.array([(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            proj = cam.project(local @ rot.T + trans)
            c0, r0 = np.floor((proj.min(0) - (x0 - 0.5, y0 - 0.5)) * ss).astype(int) - 1
            c1, r1 = np.ceil((proj.max(0) - (x0 - 0.5, y0 - 0.5)) * ss).astype(int) + 1
            r0, c0 = max(r0, 0), max(c0, 0)
            r1, c1 = min(r1, depth.shape[0]), min(c1, depth.shape[1])
            if r1 <= r0 or c1 <= c0:
                continue
            inv, dl_win = inv_all[r0:r1, c0:c1], d_local[r0:r1, c0:c1]
            t1, t2 = (lo - o_local) * inv, (hi - o_local) * inv
            tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
            tnear = np.maximum(np.maximum(tmin[..., 0], tmin[..., 1]), tmin[..., 2])
            tfar = np.minimum(np.minimum(tmax[..., 0], tmax[..., 1]), tmax[..., 2])
            depth_win = depth[r0:r1, c0:c1]
            hit = (tnear <= tfar) & (tnear > 1e-6) & (tnear < depth_win)
            if not hit.any():
                continue
            depth_win[hit] = tnear[hit]
            dl = dl_win[hit]
            tm = tmin[hit]
            ax = np.where(tm[:, 0] >= tm[:, 1], np.where(tm[:, 0] >= tm[:, 2], 0, 2), np.where(tm[:, 1] >= tm[:, 2], 1, 2))
            idx = np.arange(len(ax))
            n_local = np.zeros_like(dl)
            n_local[idx, ax] = -np.sign(dl[idx, ax])
            p_local = o_local + dl * tnear[hit][:, None]
            # texture coordinates on the face: the two axes other than its normal
            other = np.array([[1, 2], [0, 2], [0, 1]])[ax]
            u = p_local[idx, other[:, 0]]
            v = p_local[idx, other[:, 1]]
            if box.material == "wood" and (hi - lo)[0] < (hi - lo)[1]:
                u, v = v, u  # grain along the longer side
            col = texture(box.material, u, v, box.color, k * 31 + 7, {})
            p_world = p_local @ rot.T + trans
            col = col * _shade(p_world, n_local @ rot.T, scene.room)
            if box.material in ("fabric", "book"):  # softer than a hard box edge
                col *= 0.93 + 0.07 * n_local[:, 1:2].clip(0, 1)
            rgb[r0:r1, c0:c1][hit] = np.clip(col, 0, 1)
    alpha = np.isfinite(depth).astype(np.float32)
    premult = rgb * alpha[..., None]
    if ss > 1:
        size = (x1 - x0, y1 - y0)
        premult = cv2.resize(premult, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1, :3] = premult / np.maximum(alpha, 1e-6)[..., None]
    out[y0:y1, x0:x1, 3] = alpha
    return out


def render(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(background RGB uint8, object RGBA uint8, plane ids) for a scene."""
    h, w = scene.camera.size
    ss = 2 if h * w <= 320 * 240 else 1  # small images need supersampling against aliased seams
    bg, planes = render_background(scene, ss)
    obj = render_object(scene, 2)
    to8 = lambda a: np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    return to8(bg), to8(obj), planes


def sample(seed: int, index: int, size, categories=CATEGORIES, shadows: bool = True):
    """Sample ``index`` of the dataset with ``seed``: independent of how many samples are made."""
    rng = np.random.default_rng([seed, index])
    scene = random_scene(rng, size, categories)
    strength = rng.uniform(0.3, 0.6)  # drawn either way, so a scene does not depend on ``shadows``
    scene.shadow = strength if shadows else 0.0
    return scene, render(scene)


# --- writing datasets --------------------------------------------------------------------------

def _mask_bbox(alpha: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(alpha > 0)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _write_sample(job) -> dict:
    from ..files import imageio

    seed, index, size, folder, name, split, shadows = job
    scene, (bg, obj, _) = sample(seed, index, size, shadows=shadows)
    imageio.write_image(folder / "backgrounds" / f"{name}.png", bg)
    imageio.write_image(folder / "objects" / f"{name}.png", obj)
    return {"name": name, "split": split, "index": index, "seed": seed, **scene.meta(),
            "bbox": _mask_bbox(obj[..., 3])}


def generate(out, n: int, seed: int = 0, size=(120, 160), split: float = 0.9, workers: int = 2,
             on_sample=None, shadows: bool = True) -> dict:
    """Write ``n`` samples into ``out/train`` and ``out/test`` (backgrounds/, objects/, meta.jsonl).

    Sample ``i`` depends only on ``(seed, i)``; the first ``round(n * split)`` go to train/.
    """
    import json
    from multiprocessing import get_context
    from pathlib import Path

    from ..files import atomic

    out = Path(out)
    n_train = int(round(n * split))
    jobs = []
    for split_name, indices in (("train", range(n_train)), ("test", range(n_train, n))):
        if not indices:
            continue  # an empty split folder would only be an error for whoever reads it
        folder = out / split_name
        for sub in ("backgrounds", "objects"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        jobs += [(seed, i, tuple(size), folder, f"{i:06d}", split_name, shadows) for i in indices]
    metas = {"train": [], "test": []}
    if workers > 1 and len(jobs) > 4:
        with get_context("fork").Pool(workers) as pool:
            for meta in pool.imap(_write_sample, jobs, chunksize=4):
                metas[meta["split"]].append(meta)
                if on_sample:
                    on_sample(meta)
    else:
        for job in jobs:
            meta = _write_sample(job)
            metas[meta["split"]].append(meta)
            if on_sample:
                on_sample(meta)
    for split_name, rows in metas.items():
        if not rows:
            continue
        atomic.write_bytes(out / split_name / "meta.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    return {"train": len(metas["train"]), "test": len(metas["test"])}


def write_samples(folder, n: int = 4, size=(480, 640), seed: int = 2026, shadows: bool = True) -> list[dict]:
    """The project's ``sample_data/``: rooms, furniture cut-outs cropped to the object, and where each
    cut-out truly stands (``object_K.json``: box in room pixels and ``bg_from_fg``)."""
    import json
    from pathlib import Path

    from ..files import atomic, imageio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    infos = []
    for k in range(n):
        scene, (bg, obj, _) = sample(seed, k, size, shadows=shadows)
        x1, y1, x2, y2 = _mask_bbox(obj[..., 3])
        imageio.write_image(folder / f"room_{k}.png", bg)
        imageio.write_image(folder / f"object_{k}.png", np.ascontiguousarray(obj[y1:y2, x1:x2]))
        info = {"background": f"room_{k}.png", "foreground": f"object_{k}.png", "category": scene.furniture.category,
                "box": [x1, y1, x2, y2], "homography": [[1, 0, x1], [0, 1, y1], [0, 0, 1]],
                "note": "box: x1,y1,x2,y2 in room pixels (bg[y1:y2, x1:x2]); homography: room_from_object pixels"}
        atomic.write_bytes(folder / f"object_{k}.json", (json.dumps(info, indent=2) + "\n").encode())
        infos.append(info)
        if k == 0:  # the same chair as a photo and a mask, for --mask
            rgba = np.ascontiguousarray(obj[y1:y2, x1:x2])
            a = rgba[..., 3:].astype(np.float32) / 255
            backdrop = np.array([236, 236, 232], np.float32)
            rgb = np.round(rgba[..., :3] * a + backdrop * (1 - a)).astype(np.uint8)
            imageio.write_image(folder / "chair.jpg", rgb)
            imageio.write_image(folder / "chair_mask.png", np.ascontiguousarray(rgba[..., 3]))
    imageio.write_image(folder / "glasses.png", draw_glasses())
    return infos


def draw_glasses(size: int = 144) -> np.ndarray:
    """A pair of dark rectangular frames with faintly tinted lenses on the paper's 144x144 glasses
    canvas (RGBA uint8): the glasses examples' cut-out, drawn rather than copied from a photo."""
    import cv2

    img = np.zeros((size, size, 4), np.uint8)
    u = size / 144
    frame = (24, 22, 20, 255)
    line = max(2, round(2.5 * u))
    for cx in (46, 98):
        x1, y1, x2, y2 = (round(v * u) for v in (cx - 24, 60, cx + 24, 86))
        cv2.rectangle(img, (x1, y1), (x2, y2), (170, 185, 200, 50), -1, cv2.LINE_AA)  # the lens
        cv2.rectangle(img, (x1, y1), (x2, y2), frame, line, cv2.LINE_AA)
    cv2.line(img, (round(70 * u), round(66 * u)), (round(74 * u), round(66 * u)), frame, line, cv2.LINE_AA)  # bridge
    return img
