"""How far each model moves a user's own placement in real photos that have no filled hole.

``../shared/realdata/placement`` holds user-style triples (background, foreground + mask, the target
box a person drew). There is no true pose, but the box is a good rough placement: a model that
"does no harm" moves it little and keeps the object's size. The held-out pairs of ``make data-real``
cannot show this, because their backgrounds keep the filled hole where the object was, and a model
can learn to aim for the hole. Prints, per photo and model, the mean corner displacement from the
box (% of the background's diagonal), the area change and whether the trust region acted.

    python tools/user_boxes.py indoor runs/indoor-mixed/model [--out /tmp/user-boxes]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PLACEMENT = ROOT.parent / "shared" / "realdata" / "placement"


def corners_moved(sidecar: dict) -> tuple[float, float]:
    """Mean corner displacement (% of the diagonal) and area change (%) of the final placement
    against the initial one, for the foreground's outer corners."""
    h1, h0 = np.array(sidecar["homography"]), np.array(sidecar["initial_homography"])
    fh, fw = sidecar["foreground_size"]["height"], sidecar["foreground_size"]["width"]
    bh, bw = sidecar["background_size"]["height"], sidecar["background_size"]["width"]
    c = np.array([[-0.5, -0.5, 1], [fw - 0.5, -0.5, 1], [fw - 0.5, fh - 0.5, 1], [-0.5, fh - 0.5, 1]]).T
    p1, p0 = h1 @ c, h0 @ c
    p1, p0 = p1[:2] / p1[2], p0[:2] / p0[2]
    area = lambda q: 0.5 * abs(np.dot(q[0], np.roll(q[1], 1)) - np.dot(q[1], np.roll(q[0], 1)))  # noqa: E731
    return (float(np.linalg.norm(p1 - p0, axis=0).mean() / np.hypot(bh, bw) * 100),
            float(100 * (area(p1) / area(p0) - 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", type=Path, default=PLACEMENT)
    ap.add_argument("--out", type=Path, default=None, help="keep the composites here")
    ap.add_argument("--trust-region", default="default", help="as composite's --trust-region")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder (../shared/realdata/placement)")
    out = args.out or Path(tempfile.mkdtemp(prefix="stgan-user-boxes-"))
    out.mkdir(parents=True, exist_ok=True)
    print("| photo | " + " | ".join(args.models) + " |")
    print("|---" * (len(args.models) + 1) + "|")
    totals = {m: [] for m in args.models}
    for bg in sorted((args.data / "background").iterdir()):
        fg = next((args.data / "foreground").glob(bg.stem + ".*"))
        mask = next((args.data / "foreground_mask").glob(bg.stem + ".*"))
        box = ",".join((args.data / "bbox" / f"{bg.stem}.txt").read_text().split())
        cells = []
        for k, model in enumerate(args.models):
            target = out / f"{bg.stem}_{k}.png"
            run = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(fg), str(bg), "--mask", str(mask),
                                  "--box", box, "--model", model, "--out", str(target), "--save-warp",
                                  "--trust-region", args.trust_region],
                                 capture_output=True, text=True, cwd=ROOT)
            if run.returncode:
                cells.append("failed: " + run.stderr.strip().splitlines()[-1])
                continue
            side = json.loads(target.with_suffix(".json").read_text())
            moved, area = corners_moved(side)
            totals[model].append((moved, area))
            cells.append(f"{moved:.2f} % diag, area {area:+.0f} %" + (" (clamped)" if side["clamped"] else ""))
        print(f"| {bg.stem[:16]} | " + " | ".join(cells) + " |")
    means = [f"{np.mean([t[0] for t in v]):.2f} % diag, area {np.mean([t[1] for t in v]):+.0f} %" if v else "-"
             for v in totals.values()]
    print("| **mean** | " + " | ".join(means) + " |")
    print(f"composites in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
