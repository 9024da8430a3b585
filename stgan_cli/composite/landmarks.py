"""Facial landmarks with dlib: its HOG face detector and the 68-point shape predictor.

An optional extra (``pip install 'stgan-cli[landmarks]'``): ``dlib-bin`` (a prebuilt dlib) and
``face-recognition-models``, whose package carries the predictor's weights, so nothing is downloaded
at run time.  Without them :func:`stgan_cli.composite.faces.detect_faces` falls back to OpenCV's Haar cascades
and says so.

The 68 points follow iBUG 300-W: 0-16 the jaw line (0 and 16 at the ears), 27-30 the nose bridge,
36-41 the image-left eye's contour, 42-47 the image-right one's.  An eye's centre is the mean of its
contour, which for a person looking ahead is the pupil to within a few % of the eye distance.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

PREDICTOR = "shape_predictor_68_face_landmarks.dat"
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
JAW_LEFT, JAW_RIGHT, NOSE_TIP, BRIDGE_TOP = 0, 16, 30, 27
LEFT_INNER, RIGHT_INNER = 39, 42  # the eyes' inner corners

_LOCAL = threading.local()  # dlib's detector and predictor are not documented as thread-safe


def _model_folder() -> Path | None:
    # The package's __init__ needs pkg_resources (setuptools), which a fresh venv may lack: find its
    # folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder if (folder / PREDICTOR).is_file() else None


def available() -> bool:
    """Whether dlib and the predictor's weights are installed."""
    return importlib.util.find_spec("dlib") is not None and _model_folder() is not None


def _models():
    models = getattr(_LOCAL, "models", None)
    if models is None:
        import dlib

        models = _LOCAL.models = (dlib.get_frontal_face_detector(),
                                  dlib.shape_predictor(str(_model_folder() / PREDICTOR)))
    return models


def detect(gray: np.ndarray, upsample: int = 1) -> list[np.ndarray]:
    """The 68 landmarks ``(68, 2)`` (pixel centres, ``(x, y)``) of every face in ``gray`` (uint8),
    largest face first.  ``upsample`` doubles the image that many times first: faces down to ~40 px
    instead of ~80 px."""
    import dlib

    detector, predictor = _models()
    rects = sorted(detector(gray, upsample), key=lambda r: -r.area())
    out = []
    for r in rects:
        shape = predictor(gray, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
        out.append(np.array([[p.x, p.y] for p in shape.parts()], float))
    return out


def eye_centres(points: np.ndarray) -> np.ndarray:
    """``(2, 2)``: the image-left eye's centre, then the image-right one's."""
    return np.stack([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)])


def roll_degrees(points: np.ndarray) -> float:
    """The head's roll: the angle of the eye line from the horizontal, clockwise in the image."""
    (x1, y1), (x2, y2) = eye_centres(points)
    return float(np.degrees(np.arctan2(y2 - y1, x2 - x1)))


def yaw(points: np.ndarray) -> float:
    """How far the head is turned, in [-1, 1]: where the nose tip falls between the two ends of the
    jaw line, 0 in the middle (facing the camera), -1 or 1 at one end (a profile; positive when the
    nose points to the image's right)."""
    left, right, nose = points[JAW_LEFT], points[JAW_RIGHT], points[NOSE_TIP]
    axis = right - left
    t = float(np.dot(nose - left, axis) / max(np.dot(axis, axis), 1e-9))
    return float(np.clip(2 * t - 1, -1, 1))


def face_width(points: np.ndarray) -> float:
    """The distance between the two ends of the jaw line (at the ears): what glasses span."""
    return float(np.linalg.norm(points[JAW_RIGHT] - points[JAW_LEFT]))


# Where real lenses sit, measured on the 10 photos of people wearing glasses in
# ../shared/realdata/faces/with_glasses (tools/glasses_lenses.py: rim boxes read on crops levelled on
# the landmark eyes): the lenses' midpoint 0.08 eye distances below the eye line (median; mean 0.087,
# sd 0.057: frames differ), +0.027 along it (sd 0.021, within the reading's +-0.025, and with no trend
# in yaw: slope 0.002, correlation 0.01), the lens centres 1.10 eye distances apart (sd 0.06;
# correlation with the face's breadth -0.01), the lens line within 2 degrees of the eye line.
LENS_DROP, LENS_SPACING = 0.08, 1.10


def glasses_from_eyes(eyes: np.ndarray) -> np.ndarray:
    """``(2, 2)``: where a pair of glasses' lens centres belong on a face whose eye centres are ``eyes``
    (image-left first): over the eyes, on a line parallel to the eye line (the head's roll),
    :data:`LENS_SPACING` eye distances apart and :data:`LENS_DROP` below, as on real wearers.  A
    turned head (yaw) moves nothing: the lenses stay over the eyes."""
    eyes = np.asarray(eyes, float)
    mid, line = eyes.mean(0), eyes[1] - eyes[0]
    iod = float(np.linalg.norm(line))
    u = line / max(iod, 1e-9)
    down = np.array([-u[1], u[0]])  # the eye line turned a quarter clockwise: down the face
    centre = mid + LENS_DROP * iod * down
    half = 0.5 * LENS_SPACING * iod * u
    return np.stack([centre - half, centre + half])


def glasses_anchor(points: np.ndarray) -> np.ndarray:
    """``(2, 2)``: where a pair of glasses' lens centres belong on the face of the 68 ``points``
    (:func:`glasses_from_eyes` of its eye centres)."""
    return glasses_from_eyes(eye_centres(points))


def wears_glasses(gray: np.ndarray, points: np.ndarray, threshold: float = 0.75) -> bool:
    """Whether the face already wears glasses: the bridge of a pair crosses the nose between the
    inner eye corners as a horizontal line, where a bare nose shows only vertical edges.  On
    ``../shared/realdata/faces`` (tests/test_landmarks.py) the threshold finds 9 of the 11 faces with
    glasses (a rimless pair and a thin wire bridge are missed) and none of the 68 without."""
    return glasses_score(gray, points) > threshold


def glasses_score(gray: np.ndarray, points: np.ndarray) -> float:
    """How much of the nose bridge one horizontal line of edges crosses (0 to 1): a glasses bridge is
    a bar from one inner eye corner to the other; a bare nose has no such line."""
    import cv2

    inner_l, inner_r = points[LEFT_INNER], points[RIGHT_INNER]
    iod = float(np.linalg.norm(eye_centres(points)[1] - eye_centres(points)[0]))
    x1, x2 = sorted((inner_l[0], inner_r[0]))
    x1, x2 = x1 + 0.15 * (x2 - x1), x2 - 0.15 * (x2 - x1)
    y1, y2 = min(inner_l[1], inner_r[1]) - 0.25 * iod, points[BRIDGE_TOP + 1][1]
    h, w = gray.shape
    x1, x2, y1, y2 = max(round(x1), 0), min(round(x2), w), max(round(y1), 0), min(round(y2), h)
    if x2 - x1 < 3 or y2 - y1 < 3:
        return 0.0
    # The patch at a fixed size, so the edge test sees every face alike.
    patch = cv2.resize(gray[y1:y2, x1:x2], (32, 32), interpolation=cv2.INTER_AREA)
    patch = cv2.GaussianBlur(patch, (3, 3), 0).astype(np.float32)
    gy = np.abs(cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3))
    gx = np.abs(cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=3))
    horizontal = ((gy > 2.0 * gx) & (gy > 40)).astype(np.uint8)
    band = cv2.dilate(horizontal, np.ones((5, 1), np.uint8))  # a line may wander by two rows
    return float(band.mean(1).max())
