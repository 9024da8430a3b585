"""Faces and glasses: where the eyes are in a photo, where the lenses are in a cut-out, and the
aligned face frame the glasses model works in.

Detection uses dlib's 68 facial landmarks where the ``landmarks`` extra is installed
(:mod:`stgan_cli.composite.landmarks`: eye centres from the eye contours, the head's roll and yaw, glasses
already worn), else OpenCV's Haar cascades, which ship inside the opencv-python wheels (4.x; OpenCV 5
dropped them, hence the pin).  Either way nothing is downloaded at run time, and every face says
which detector found it.  The model frame is an aligned
face crop like the paper's CelebA crops: the eyes sit where CelebA's aligned images put them
(their mean landmarks, shifted into the 144x144 crop around (row 124, col 89)).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..core import frames

# Mean eye landmarks of CelebA's aligned images (69, 111) and (108, 111), in the 144x144 crop
# whose top-left is (col 17, row 52): left and right eye as seen in the image, (x, y).
CANONICAL_EYES_144 = np.array([[52.0, 59.0], [91.0, 59.0]])


DETECTORS = ("auto", "landmarks", "haar")


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in image pixels
    eyes: np.ndarray  # (2, 2): the image-left eye, then the image-right one, (x, y)
    eyes_found: bool  # False: eyes estimated from the face box
    detector: str = "haar"  # or "landmarks"
    landmarks: np.ndarray | None = None  # (68, 2) image pixels, with the landmarks detector
    glasses: bool | None = None  # already wearing glasses (landmarks only; None: not known)

    def summary(self) -> dict:
        """What a sidecar reports of the face."""
        out = {"box": list(self.box), "eyes": self.eyes.round(2).tolist(), "eyes_found": self.eyes_found,
               "detector": self.detector, "lenses_at": glasses_anchor(self).round(2).tolist()}
        if self.landmarks is not None:
            from . import landmarks

            out.update(roll=round(landmarks.roll_degrees(self.landmarks), 2),
                       yaw=round(landmarks.yaw(self.landmarks), 3),
                       width=round(landmarks.face_width(self.landmarks), 2), glasses=self.glasses)
        return out


def glasses_anchor(face: Face) -> np.ndarray:
    """``(2, 2)``: where the glasses' lens centres go on ``face``: over its eyes, a little wider and
    lower, as on real wearers (:func:`stgan_cli.composite.landmarks.glasses_from_eyes`), whichever detector
    found them.  This is the truth ``stgan data glasses`` aligns crops on and the start ``composite``
    gives the model."""
    from . import landmarks

    return landmarks.glasses_from_eyes(face.eyes)


def canonical_eyes(size) -> np.ndarray:
    """The two eye positions in a model frame of ``size=(H, W)`` (pixels)."""
    m = frames.pixel_from_canon(size) @ frames.canon_from_pixel((144, 144))
    return frames.apply_homography(m, CANONICAL_EYES_144)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rotation + uniform scale + translation (3x3) taking the two points ``src`` onto ``dst``."""
    s = complex(*(src[1] - src[0]))
    d = complex(*(dst[1] - dst[0]))
    if abs(s) < 1e-9:
        raise ValueError("the two source points coincide")
    z = d / s
    a, b = z.real, z.imag
    rot = np.array([[a, -b], [b, a]])
    t = dst[0] - rot @ src[0]
    return np.array([[a, -b, t[0]], [b, a, t[1]], [0, 0, 1.0]])


# One set of cascades per thread: a CascadeClassifier keeps per-call scale data inside itself, so
# two decode threads running detectMultiScale on one instance corrupt each other (assertion
# failures in getScaleData, or a segfault).
_LOCAL = threading.local()


def _cascade(name: str):
    cache = getattr(_LOCAL, "cascades", None)
    if cache is None:
        cache = _LOCAL.cascades = {}
    if name not in cache:
        cache[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    return cache[name]


def _eyes_in(gray: np.ndarray, box) -> np.ndarray | None:
    """The best pair of eyes in the upper part of a face box, image-left first, or None."""
    x, y, w, h = box
    roi = gray[y:y + int(h * 0.6), x:x + w]
    found = []
    for name in ("haarcascade_eye_tree_eyeglasses.xml", "haarcascade_eye.xml"):
        for ex, ey, ew, eh in _cascade(name).detectMultiScale(roi, 1.05, 4, minSize=(max(8, w // 10),) * 2,
                                                               maxSize=(w // 2, w // 2)):
            found.append((x + ex + ew / 2, y + ey + eh / 2, ew))
        if len(found) >= 2:
            break
    best, best_score = None, np.inf
    for i in range(len(found)):
        for j in range(len(found)):
            (x1, y1, s1), (x2, y2, s2) = found[i], found[j]
            if x1 >= x2:
                continue
            dist = x2 - x1
            if not (0.25 * w < dist < 0.65 * w) or abs(y2 - y1) > 0.25 * dist:
                continue
            if not (x1 < x + w / 2 < x2):  # one eye each side of the face's middle
                continue
            score = abs(y2 - y1) / dist + abs(dist / w - 0.42) + abs(s1 - s2) / max(s1, s2)
            if score < best_score:
                best, best_score = np.array([[x1, y1], [x2, y2]]), score
    return best


DETECT_SIDE = 1000  # faces are found on a copy at most this large: 4K photos take 10x longer otherwise


def detect_faces(rgb: np.ndarray, detector: str = "auto") -> list[Face]:
    """Faces, largest first, each with its two eyes.

    ``detector``: ``landmarks`` (dlib, :mod:`stgan_cli.composite.landmarks`), ``haar``, or ``auto``: landmarks
    where installed, else Haar.
    """
    from . import landmarks
    from ..errors import StganError

    if detector not in DETECTORS:
        raise StganError(f"--detector {detector}: expected one of {', '.join(DETECTORS)}")
    if detector == "landmarks" and not landmarks.available():
        raise StganError("--detector landmarks: dlib is not installed (pip install 'stgan-cli[landmarks]')")
    if rgb.dtype != np.uint8:
        rgb = (rgb // 257).astype(np.uint8)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    h, w = gray.shape
    scale = min(1.0, DETECT_SIDE / max(h, w))
    if scale < 1:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    to_image = lambda v: (v + 0.5) / scale - 0.5  # noqa: E731  pixel centres, as everywhere in the project
    if detector != "haar" and landmarks.available():
        return _landmark_faces(gray, to_image)
    return _haar_faces(cv2.equalizeHist(gray), scale, to_image)


def _landmark_faces(gray: np.ndarray, to_image) -> list[Face]:
    from . import landmarks

    faces = []
    for points in landmarks.detect(gray):
        pts = to_image(points)
        (x1, y1), (x2, y2) = pts.min(0), pts.max(0)
        box = tuple(int(round(v)) for v in (x1, y1, x2 - x1, y2 - y1))  # the landmarks' extent
        faces.append(Face(box, landmarks.eye_centres(pts), True, "landmarks", pts,
                          landmarks.wears_glasses(gray, points)))
    return faces


def _haar_faces(gray: np.ndarray, scale: float, to_image) -> list[Face]:
    """Frontal faces from the Haar cascades, each with its two eyes (detected, else estimated from
    the box).  A box is kept if it is at least 60% as large as the largest face, or 30% as large with
    both eyes found: the cascade's false alarms (a shoulder, a patterned shirt) are small and mostly
    eyeless."""
    min_side = max(24, min(gray.shape) // 25)
    boxes = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.08, minNeighbors=6, minSize=(min_side, min_side))
    found_faces = []
    for bx, by, bw, bh in sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3]):
        eyes = _eyes_in(gray, (bx, by, bw, bh))
        found = eyes is not None
        if not found:  # where eyes sit in a Haar face box on average
            eyes = np.array([[bx + 0.31 * bw, by + 0.40 * bh], [bx + 0.69 * bw, by + 0.40 * bh]])
        found_faces.append((bx, by, bw, bh, eyes, found))
    largest = found_faces[0][2] if found_faces else 0
    faces = []
    for bx, by, bw, bh, eyes, found in found_faces:
        if bw >= 0.6 * largest or (found and bw >= 0.3 * largest):
            box = tuple(int(round(v / scale)) for v in (bx, by, bw, bh))
            faces.append(Face(box, to_image(eyes), found))
    return faces


def lens_centres(alpha: np.ndarray) -> np.ndarray | None:
    """Centres ``(2, 2)`` of a pair of glasses' lenses from its alpha ``(H, W)`` in [0, 1], image-left
    first: the regions the frame encloses (filled), with the thin temples and bridge opened away."""
    m = (alpha > 0.1).astype(np.uint8)
    if m.sum() == 0:
        return None
    h, w = m.shape
    outside = np.pad(1 - m, 1, constant_values=1)
    mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, mask, (0, 0), 2)
    filled = (m | (outside[1:-1, 1:-1] == 1)).astype(np.uint8)
    ys, xs = np.nonzero(filled)
    k = max(3, int((xs.max() - xs.min() + 1) / 10)) | 1
    opened = cv2.morphologyEx(filled, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    middle = int((xs.min() + xs.max()) / 2)
    centres = []
    for lo, hi in ((0, middle), (middle, w)):
        part = np.zeros_like(opened)
        part[:, lo:hi] = opened[:, lo:hi]
        n, _, stats, cents = cv2.connectedComponentsWithStats(part)
        if n < 2:
            return None
        centres.append(cents[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))])
    return np.array(centres, float)
