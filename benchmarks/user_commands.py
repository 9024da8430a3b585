"""The two commands users run most, timed whole against ``python -c "import torch"`` in the same run:

- ``stgan composite fg.png bg.png --out result.png`` at 1080p with no box: the placement critic
  chooses the box (``--place auto``), the default model corrects it;
- the same with ``--harmonize`` (the harmonizer matches the object's colours to the photo), and with
  a box instead of the search (``--box ... --harmonize``);
- a glasses composite on one face at 1080p (``--model glasses``), when ``../shared/realdata`` has the
  faces and glasses.

Each on the engine ``auto`` picks (onnx where the folders ship ``model.onnx``); medians of ``--runs``.

    python benchmarks/user_commands.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"


def median_time(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stgan() -> list[str]:
    exe = Path(sys.executable).with_name("stgan")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "stgan_cli"]


def to_1080p(src: Path, dst: Path) -> Path:
    img = cv2.imread(str(src))
    h, w = img.shape[:2]
    s = 1080 / h
    img = cv2.resize(img, (round(w * s), 1080), interpolation=cv2.INTER_CUBIC)
    if img.shape[1] < 1920:  # a portrait photo: pad to 1920 wide with its edge colour
        pad = 1920 - img.shape[1]
        img = cv2.copyMakeBorder(img, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)
    cv2.imwrite(str(dst), img[:, :1920])
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stgan-user-bench-"))
    torch_s = median_time([sys.executable, "-c", "import torch"], args.runs)
    print(f'python -c "import torch"                         {torch_s * 1000:8.0f} ms')
    rooms = sorted((REALDATA / "rooms").glob("*_image.png"))
    sofa = REALDATA / "objects" / "sofa.png"
    if rooms and sofa.is_file():
        bg, fg = to_1080p(rooms[0], tmp / "room.png"), sofa
    else:  # the bundled sample, scaled up
        bg, fg = to_1080p(ROOT / "sample_data" / "room_0.png", tmp / "room.png"), ROOT / "sample_data" / "object_0.png"
    cmd = [*stgan(), "composite", str(fg), str(bg), "--out", str(tmp / "auto.png")]
    t = median_time(cmd, args.runs)
    print(f"composite, no box (--place auto), 1920x1080     {t * 1000:8.0f} ms  ({t / torch_s:4.2f}x import torch)")
    t = median_time(cmd + ["--harmonize"], args.runs)
    print(f"composite, no box, --harmonize, 1920x1080       {t * 1000:8.0f} ms  ({t / torch_s:4.2f}x import torch)")
    t = median_time(cmd + ["--box", "600,500,1300,1000", "--harmonize"], args.runs)
    print(f"composite, --box, --harmonize, 1920x1080        {t * 1000:8.0f} ms  ({t / torch_s:4.2f}x import torch)")
    faces = REALDATA / "faces" / "no_glasses" / "img1.jpg"
    glasses = REALDATA / "glasses" / "glasses_00.png"
    if faces.is_file() and glasses.is_file():
        face = to_1080p(faces, tmp / "face.png")
        cmd = [*stgan(), "composite", str(glasses), str(face), "--out", str(tmp / "g.png"), "--model", "glasses"]
        t = median_time(cmd, args.runs)
        print(f"composite, glasses on one face, 1920x1080       {t * 1000:8.0f} ms  ({t / torch_s:4.2f}x import torch)")
    else:
        print("glasses: skipped (needs ../shared/realdata/faces and glasses)")


if __name__ == "__main__":
    main()
