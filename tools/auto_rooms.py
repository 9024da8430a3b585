"""Where ``--place auto`` puts an object in real rooms that have no filled hole (issue 34's check).

Runs ``stgan composite OBJECT ROOMS/ --out DIR --heatmap --save-warp`` on the 12 NYU rooms of
``../shared/realdata/rooms`` as a user would (no box), and writes a contact sheet: each room's
composite beside the critic's heatmap, labelled with the room and the chosen box's score.  Whether
the object stands on the floor (or a surface that could hold it) is judged by eye on the sheet.

    python tools/auto_rooms.py ../shared/realdata/objects/sofa.png docs/auto_sofa.png [--model indoor]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ROOT.parent / "shared" / "realdata" / "rooms"


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("object", type=Path)
    ap.add_argument("sheet", type=Path)
    ap.add_argument("--rooms", type=Path, default=ROOMS)
    ap.add_argument("--model", default="indoor")
    ap.add_argument("--critic", default=None)
    ap.add_argument("--width", type=int, default=320, help="pixels per tile")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-m", "stgan_cli", "composite", str(args.object), str(args.rooms / "*_image.png"),
               "--out", str(out), "--model", args.model, "--heatmap", "--save-warp"]
        if args.critic:
            cmd += ["--critic", args.critic]
        code = subprocess.call(cmd)
        if code:
            return code
        rows = []
        for result in sorted(out.glob("*.json"), key=lambda p: int(p.stem.split("_")[0])):
            side = json.loads(result.read_text())
            chosen = side["placement"]["chosen"]
            img = cv2.imread(str(result.with_suffix(".png")))
            heat = cv2.imread(str(result.with_name(result.stem + "_heatmap.png")))
            h = round(img.shape[0] * args.width / img.shape[1])
            tiles = [cv2.resize(x, (args.width, h), interpolation=cv2.INTER_AREA) for x in (img, heat)]
            rows.append(np.concatenate([label(tiles[0], f"{result.stem.split('_')[0]}: score {chosen['score']:.2f}"),
                                        tiles[1]], 1))
            print(f"{result.stem}: box {chosen['box']}, score {chosen['score']:.3f}")
    half = (len(rows) + 1) // 2
    pad = lambda col: col + [np.zeros_like(rows[0])] * (half - len(col))  # noqa: E731
    sheet = np.concatenate([np.concatenate(pad(rows[:half]), 0), np.concatenate(pad(rows[half:]), 0)], 1)
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.sheet), sheet)
    print(f"sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
