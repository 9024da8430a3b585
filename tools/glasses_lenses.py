"""Where real lenses sit relative to the landmark eyes (issue 35): the truth for the glasses anchor,
measured on the photos of people wearing glasses in ``../shared/realdata/faces/with_glasses``.

Method: the 68-point landmarks (``stgan_cli.composite.landmarks``, the same detector the glasses placement
uses) give each face's eye centres; the photo is turned upright about their midpoint (the eye line
level) and scaled to 200 px per eye distance, into a 600x320 crop with a tick every 0.1 eye
distances (``--sheets DIR`` writes them).  On each crop the outer edges of each lens rim were read
by eye (x1, x2, y1, y2; recorded below, about +-5 px = +-0.025 eye distances); a lens's centre is
the centre of its rim's box.  Printed: per face, the lenses' midpoint from the eyes' midpoint (along
and across the eye line, in eye distances), the lens spacing, the lens line's tilt from the eye line,
with the landmarks' yaw and roll; then the fit of the sideways offset against yaw.

    python tools/glasses_lenses.py [--faces ../shared/realdata/faces/with_glasses] [--sheets /tmp/lenses]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stgan_cli.composite import landmarks

W, H, PER_EYE = 600, 320, 200  # crop size, and pixels per eye distance in it
# Rim boxes read off the crops (image-left lens first): x1, x2, y1, y2 in crop pixels.
RIMS = {
    "7134850@N05_identity_2@8980174892_1.jpg": [(95, 290, 140, 220), (315, 510, 138, 215)],
    "7953937@N04_identity_7@11265230806_0.jpg": [(75, 290, 115, 250), (335, 515, 110, 240)],
    "7953937@N04_identity_7@9496761928_0.jpg": [(75, 285, 125, 250), (340, 500, 120, 240)],
    "8049225@N08_identity_4@8226921695_0.jpg": [(95, 295, 120, 230), (310, 520, 120, 230)],
    "8101189@N07_identity_0@3356842934_6.jpg": [(120, 285, 125, 200), (330, 480, 125, 205)],
    "clapton-1.jpg": [(105, 300, 130, 290), (320, 520, 125, 280)],
    "clapton-2.jpg": [(130, 290, 125, 240), (335, 500, 120, 235)],
    "img24.jpg": [(110, 295, 120, 210), (320, 510, 120, 215)],
    "img25.jpg": [(90, 290, 125, 220), (330, 500, 120, 215)],
    "lennon-1.jpg": [(110, 285, 110, 240), (330, 490, 105, 235)],
}


def face_points(path: Path) -> np.ndarray | None:
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    s = min(1.0, 1200 / max(img.shape))
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img
    faces = landmarks.detect(small, 1 if max(small.shape) > 500 else 2)
    return faces[0] / s if faces else None


def upright_crop(path: Path, points: np.ndarray) -> np.ndarray:
    """The crop the rims were read on: level eye line, eyes' midpoint at the centre, with ticks."""
    eyes = landmarks.eye_centres(points)
    mid, iod = eyes.mean(0), float(np.linalg.norm(eyes[1] - eyes[0]))
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), landmarks.roll_degrees(points), PER_EYE / iod)
    m[:, 2] += np.array([W / 2, H / 2]) - mid
    crop = cv2.warpAffine(cv2.imread(str(path)), m, (W, H), flags=cv2.INTER_CUBIC)
    for k in range(-15, 16):
        x = int(round(W / 2 + k * 0.1 * PER_EYE))
        cv2.line(crop, (x, 0), (x, 16 if k % 5 == 0 else 8), (0, 255, 255), 1)
        if k % 5 == 0:
            cv2.putText(crop, f"{k / 10:+.1f}", (x - 14, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    for k in range(-8, 9):
        y = int(round(H / 2 + k * 0.1 * PER_EYE))
        cv2.line(crop, (0, y), (16 if k % 5 == 0 else 8, y), (0, 255, 255), 1)
    for e in eyes:
        p = m @ np.array([e[0], e[1], 1.0])
        cv2.drawMarker(crop, (int(p[0]), int(p[1])), (0, 255, 0), cv2.MARKER_CROSS, 10, 1)
    return crop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared/realdata/faces/with_glasses")
    ap.add_argument("--sheets", type=Path, default=None, help="write the upright crops here")
    args = ap.parse_args()
    rows = []
    print("| photo | yaw | roll, deg | lenses' midpoint along / below the eye line | spacing | lens line tilt, deg |")
    print("|---|---|---|---|---|---|")
    for name, (left, right) in RIMS.items():
        path = args.faces / name
        points = face_points(path) if path.is_file() else None
        if points is None:
            print(f"| {name} | (missing or no face) | | | | |")
            continue
        if args.sheets:
            args.sheets.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.sheets / (path.stem + ".png")), upright_crop(path, points))
        cl = np.array([(left[0] + left[1]) / 2, (left[2] + left[3]) / 2])
        cr = np.array([(right[0] + right[1]) / 2, (right[2] + right[3]) / 2])
        dx, dy = ((cl + cr) / 2 - [W / 2, H / 2]) / PER_EYE
        spacing = float(np.linalg.norm(cr - cl)) / PER_EYE
        tilt = float(np.degrees(np.arctan2(cr[1] - cl[1], cr[0] - cl[0])))
        yaw, roll = landmarks.yaw(points), landmarks.roll_degrees(points)
        rows.append((yaw, dx, dy, spacing, tilt))
        print(f"| {name} | {yaw:+.2f} | {roll:+.1f} | {dx:+.3f} / {dy:+.3f} | {spacing:.2f} | {tilt:+.1f} |")
    if len(rows) < 3:
        return
    yaw, dx, dy, spacing, tilt = np.array(rows).T
    slope, icpt = np.polyfit(yaw, dx, 1)
    print(f"\n{len(rows)} faces: midpoint {dx.mean():+.3f} (sd {dx.std():.3f}) along, {dy.mean():+.3f} (sd {dy.std():.3f}) "
          f"below the eye line; spacing {spacing.mean():.2f} (sd {spacing.std():.2f}) eye distances; tilt "
          f"{np.abs(tilt).mean():.1f} deg mean abs.  Along = {icpt:+.3f} + {slope:+.3f} x yaw "
          f"(correlation {np.corrcoef(yaw, dx)[0, 1]:+.2f}; yaw {yaw.min():+.2f}..{yaw.max():+.2f}).")


if __name__ == "__main__":
    main()
