"""``make demo``: composite the bundled sample cut-out into the sample room with the default model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def poor_guess(box) -> str:
    """A user's rough ``--box`` for a true box: a little too small and too high (about the size of
    the rough boxes the default model trains on and its trust region allows for)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return f"{x1 + 0.05 * w:.0f},{y1 - 0.12 * h:.0f},{x2 - 0.05 * w:.0f},{y2 - 0.2 * h:.0f}"


def main() -> int:
    from .model import modelstore
    from .data import synth_indoor

    from .files.bundled import samples_dir

    from .files.bundled import in_checkout

    data = samples_dir()
    out = (ROOT if in_checkout() else Path.cwd()) / "out" / "demo"
    if not (data / "object_0.json").exists():
        synth_indoor.write_samples(data)
    truth = json.loads((data / "object_0.json").read_text())
    guess = poor_guess(truth["box"])
    cmd = [sys.executable, "-m", "stgan_cli", "composite", str(data / truth["foreground"]),
           str(data / truth["background"]), "--out", str(out / "composite.png"), "--box", guess,
           "--save-warp", "--steps", str(out / "steps")]
    installed = (modelstore.models_dir() / modelstore.DEFAULT_MODEL).is_dir()
    if not installed:
        print("demo: the default model (models/indoor/) is not trained yet; showing the initial placement "
              "only (--iterations 0).", file=sys.stderr)
        cmd += ["--iterations", "0"]
    out.mkdir(parents=True, exist_ok=True)
    print("$ stgan " + " ".join(shlex.quote(c) for c in cmd[3:]), file=sys.stderr)
    code = subprocess.call(cmd)
    if code == 0:
        pair = ""
        if installed:
            before_after(out / "steps" / "composite_step0.png", out / "composite.png", out / "before_after.png")
            pair = f", before | after {out / 'before_after.png'}"
        print(f"demo: composite {out / 'composite.png'}, steps {out / 'steps' / 'composite_steps.png'}{pair}; "
              f"the object truly stands in the box {truth['box']}")
    return code


def before_after(before: Path, after: Path, out: Path) -> None:
    """The initial placement and the model's, side by side, each labelled."""
    import cv2
    import numpy as np

    from .files import imageio

    panels = []
    for path, label in ((before, "before (initial box)"), (after, "after ST-GAN")):
        img = np.ascontiguousarray(imageio.read_image(path).pixels[..., :3])
        cv2.putText(img, label, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(img, label, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        panels.append(img)
    gap = np.full((panels[0].shape[0], 8, 3), 255, panels[0].dtype)
    imageio.write_image(out, np.concatenate([panels[0], gap, panels[1]], 1))


if __name__ == "__main__":
    sys.exit(main())
