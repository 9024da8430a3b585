"""Speed of the procedural indoor generator: samples/s at 120x160 and 480x640, 1 and 2 processes.

Prints medians of several runs, writing real datasets into a temporary folder (rendering + PNG
encoding + meta).  Run: ``.venv/bin/python benchmarks/synth_indoor.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stgan_cli.data import synth_indoor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("size       workers   samples/s (median of %d)" % args.runs)
    for size, n in (((120, 160), 120), ((480, 640), 16)):
        for workers in (1, 2):
            rates = []
            for run in range(args.runs):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    synth_indoor.generate(Path(tmp), n, seed=run, size=size, workers=workers)
                    rates.append(n / (time.perf_counter() - t0))
            print(f"{size[0]}x{size[1]:<6} {workers:>7}   {statistics.median(rates):8.1f}")


if __name__ == "__main__":
    main()
