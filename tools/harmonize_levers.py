"""How far each harmonizer change got: the held-out fMSE (at 120x160, on the recorded changes) and the
share made worse against the step, one line per run, from each run folder's ``history.json``.

    python tools/harmonize_levers.py docs/harmonize_levers.png NAME=RUN_DIR [NAME=RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from stgan_cli.files import imageio
from stgan_cli.training.report import _plot


def main(out: str, runs: list[str]) -> None:
    fmse, worse = {}, {}
    base = None
    for spec in runs:
        name, _, folder = spec.partition("=")
        rows = [r for r in json.loads((Path(folder) / "history.json").read_text()) if "strength" not in r]
        steps = [r["step"] for r in rows]
        fmse[name] = (steps, [r["fmse"] for r in rows])
        worse[name] = (steps, [100 * r["worse"] for r in rows])
        base = rows[0]["fmse_composite"]
    if base is not None:
        longest = max(max(s) for s, _ in fmse.values())
        fmse["composite"] = ([0, longest], [base, base])
    panels = np.full((2 * 240, 720, 3), 255, np.uint8)
    _plot(panels[:240], fmse, "held-out fMSE at 120x160 (composite: flat line)")
    _plot(panels[240:], worse, "held-out pairs made worse, %")
    imageio.write_image(out, panels)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
