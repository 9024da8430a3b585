"""``make demo``: composite the bundled sample cut-out into the sample room with the default model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from . import modelstore
    from .data import synth_indoor

    data, out = ROOT / "sample_data", ROOT / "out" / "demo"
    if not (data / "object_0.json").exists():
        synth_indoor.write_samples(data)
    truth = json.loads((data / "object_0.json").read_text())
    # Start from a poor guess, as a user's rough box would be: too small and too high.
    x1, y1, x2, y2 = truth["box"]
    w, h = x2 - x1, y2 - y1
    guess = f"{x1 + 0.1 * w:.0f},{y1 - 0.35 * h:.0f},{x2 - 0.1 * w:.0f},{y2 - 0.45 * h:.0f}"
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
        print(f"demo: composite {out / 'composite.png'}, steps {out / 'steps' / 'composite_steps.png'}; "
              f"the object truly stands in the box {truth['box']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
