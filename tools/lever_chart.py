"""How far each lever got, as a picture: the change of the corner error against no correction
(bars, % of identity's error) and the share of pairs made worse (dots), per object size and source,
for every model of one ``stgan eval --json`` run on real photo pairs.

    stgan eval A B C --data data/real/test --protocol box --decoys --seed 0 --json > eval.json
    python tools/lever_chart.py eval.json docs/levers.png

The issue's lines are drawn in: -40 % for objects over 15 % of the photo, -10 % under it and per
source, and 8 % made worse.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

COLOURS = [(90, 90, 90), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194)]  # RGB
GAIN_RANGE, WORSE_RANGE = (-50.0, 10.0), (0.0, 50.0)  # % axes


def _text(img, s, org, scale=0.45, colour=(0, 0, 0), thick=1):
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def draw(report: dict, title: str) -> np.ndarray:
    groups = report["by_group"]
    models = [m["label"] for m in report["models"] if m["model"] is not None]
    w_group, panel_h, left, top = 150, 260, 70, 40
    width = left + w_group * len(groups) + 20
    height = top + 2 * panel_h + 90 + 18 * len(models)
    img = np.full((height, width, 3), 255, np.uint8)
    _text(img, title, (left, 24), 0.55, thick=1)
    panels = [("error vs identity, %", GAIN_RANGE, "change_pct", 1.0, [(-40, "gain target >15 %"), (-10, "<15 %, sources")]),
              ("made worse, % of pairs", WORSE_RANGE, "worse_share", 100.0, [(8, "harm limit")])]
    for k, (label, (lo, hi), key, scale, lines) in enumerate(panels):
        y0 = top + k * (panel_h + 30)
        to_y = lambda v: int(y0 + (hi - v) / (hi - lo) * panel_h)  # noqa: E731
        cv2.rectangle(img, (left, y0), (width - 20, y0 + panel_h), (0, 0, 0), 1)
        for v in np.arange(lo, hi + 1e-9, 10):
            cv2.line(img, (left - 4, to_y(v)), (left, to_y(v)), (0, 0, 0), 1)
            _text(img, f"{v:+.0f}" if key == "change_pct" else f"{v:.0f}", (8, to_y(v) + 4), 0.4)
        cv2.line(img, (left, to_y(0)), (width - 20, to_y(0)), (0, 0, 0), 1)
        _text(img, label, (left + 4, y0 + 16), 0.45)
        for g, group in enumerate(groups):
            x0 = left + g * w_group + 12
            bar = (w_group - 24) // max(len(models), 1)
            for m, name in enumerate(models):
                got = group["models"].get(name)
                if got is None:
                    continue
                v = float(np.clip(got[key] * scale, lo, hi))
                colour = COLOURS[m % len(COLOURS)]
                x = x0 + m * bar
                if key == "change_pct":
                    cv2.rectangle(img, (x, min(to_y(0), to_y(v))), (x + bar - 2, max(to_y(0), to_y(v))), colour, -1)
                else:
                    cv2.circle(img, (x + bar // 2, to_y(v)), 4, colour, -1, cv2.LINE_AA)
            if k == 1:
                _text(img, group["label"], (x0, y0 + panel_h + 16), 0.4)
                _text(img, f"n={group['n']}", (x0, y0 + panel_h + 30), 0.36)
        for value, name in lines:  # over the bars
            cv2.line(img, (left, to_y(value)), (width - 20, to_y(value)), (200, 0, 0), 1, cv2.LINE_AA)
            _text(img, name, (width - 160, to_y(value) - 4), 0.38, (200, 0, 0))
    y = top + 2 * panel_h + 80
    for m, name in enumerate(models):
        cv2.rectangle(img, (left, y - 10), (left + 14, y + 2), COLOURS[m % len(COLOURS)], -1)
        _text(img, name, (left + 22, y), 0.42)
        y += 18
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="stgan eval --json output")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    report = json.loads(args.report.read_text())
    title = args.title or (f"{report['data']}: {report['n']} held-out pairs, protocol {report['protocol']}"
                           f"{' with decoys' if report.get('decoys') else ''}, seed {report['seed']}")
    cv2.imwrite(str(args.out), draw(report, title)[..., ::-1])


if __name__ == "__main__":
    main()
