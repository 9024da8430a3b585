"""``make demo``: composite the bundled sample cut-out into the sample room with the default model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from . import modelstore, samples

    data, out = ROOT / "sample_data", ROOT / "out" / "demo"
    if not (data / "room.png").exists():
        samples.write(data)
    truth = json.loads((data / "cabinet_placement.json").read_text())
    # Start from a deliberately poor placement (too high, too small), as a user's rough guess would be.
    x1, y1, x2, y2 = truth["box"]
    guess = f"{x1 + 40},{y1 - 90},{x2 - 20},{y2 - 120}"
    cmd = [sys.executable, "-m", "stgan_cli", "composite", str(data / "cabinet.png"), str(data / "room.png"),
           "--out", str(out / "composite.png"), "--box", guess, "--save-warp", "--steps", str(out / "steps")]
    installed = (modelstore.models_dir() / modelstore.DEFAULT_MODEL).is_dir()
    if not installed:
        print("demo: the default model (models/indoor/) is not trained yet; showing the initial placement "
              "only (--iterations 0).", file=sys.stderr)
        cmd += ["--iterations", "0"]
    out.mkdir(parents=True, exist_ok=True)
    print("$ stgan " + " ".join(shlex.quote(c) for c in cmd[3:]), file=sys.stderr)
    code = subprocess.call(cmd)
    if code == 0:
        print(f"demo: composite {out / 'composite.png'}, steps {out / 'steps' / 'composite_steps.png'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
