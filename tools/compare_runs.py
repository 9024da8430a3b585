"""Held-out corner error against training steps for several runs in one picture (the final
iteration of each run's in-run evaluations), so that curves of different designs can be read side
by side, e.g. for docs/ablation.md:

    python tools/compare_runs.py runs/indoor-refiner runs/refiner-crop runs/indoor-mixed --out docs/curves.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stgan_cli.files import imageio
from stgan_cli.training import report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (each with metrics.jsonl)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--key", default="corner_error", help="corner_error | shape_error | iou")
    args = ap.parse_args()
    series = {}
    for run in args.runs:
        evals = [r for r in report.read_metrics(run / "metrics.jsonl") if "eval" in r]
        series[run.name] = ([r["step"] for r in evals], [r["eval"][args.key][-1] for r in evals])
        print(run.name, " ".join(f"{s}:{v:.2f}" for s, v in zip(*series[run.name])))
    panel = np.full((300, 720, 3), 255, np.uint8)
    report._plot(panel, series, f"held-out {args.key.replace('_', ' ')} after the last iteration (px at model size)")
    imageio.write_image(args.out, panel)


if __name__ == "__main__":
    main()
