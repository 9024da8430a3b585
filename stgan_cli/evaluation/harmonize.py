"""``stgan eval HARMONIZER --data DIR``: harmonization on held-out recoloured photos.

Every pair of a ``stgan data harmonize`` split is measured at the photo's own resolution, as the
composite (nothing done), the classical statistics transfer (:func:`stgan_cli.core.colour.stats_transfer`)
and the harmonizer (through :mod:`stgan_cli.composite.harmonize`, the code ``composite`` runs):
MSE and PSNR over the whole photo, fMSE over the object (iHarmony4's measures, on the 0-255 scale),
and the share of pairs each method makes worse than the composite; by object size, source and kind
of change.  The picture: the worst, median and best pairs, composite | statistics | harmonized | truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import colour
from ..data import harmonize as pairs
from .photos import SIZE_BUCKETS, source_family

METHODS = ("composite", "stats", "harmonized")
LABELS = {"composite": "composite (nothing done)", "stats": "statistics transfer (Lab, ring)",
          "harmonized": "harmonizer"}


def measure(folder: Path, harmonizer, on_pair=None, keep: bool = False) -> tuple[list[dict], dict]:
    """Per pair, the measures of every method; with ``keep`` also each pair's images (name -> dict)."""
    from ..composite.harmonize import harmonize_pixels, predict

    rows, images, photo = [], {}, (None, None)
    for row in pairs.read_rows(folder):
        p = pairs.load_pair(folder, row, photo[1] if photo[0] == row["photo"] else None)
        photo = (row["photo"], p.truth)  # decoded once for all its objects (rows of a photo follow each other)
        outs = {"composite": p.composite, "stats": colour.stats_transfer(p.composite, p.mask)}
        outs["harmonized"] = harmonize_pixels(p.composite, p.mask, predict(harmonizer, p.composite, p.mask))
        r = {"name": p.name, "area": row["area"], "source": row.get("source", ""), "change": sorted(row["change"])}
        for m, img in outs.items():
            r[m] = {"mse": colour.mse(img, p.truth), "fmse": colour.fmse(img, p.truth, p.mask),
                    "psnr": colour.psnr(img, p.truth)}
        rows.append(r)
        if keep:
            images[p.name] = {**outs, "truth": p.truth, "mask": p.mask}
        if on_pair:
            on_pair()
    return rows, images


def summarise(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    if not rows:
        return out
    base = np.array([r["composite"]["fmse"] for r in rows])
    for m in METHODS:
        f = np.array([r[m]["fmse"] for r in rows])
        psnr = np.array([min(r[m]["psnr"], 100.0) for r in rows])
        out[m] = {"mse": round(float(np.mean([r[m]["mse"] for r in rows])), 2), "fmse": round(float(f.mean()), 2),
                  "fmse_median": round(float(np.median(f)), 2), "psnr": round(float(psnr.mean()), 2),
                  "worse": round(float((f > base + 1e-6).mean()), 4)}
    return out


def breakdown(rows: list[dict]) -> list[dict]:
    """The summary per object size, per source, and with or without a colour transfer."""
    groups = [("size", label, [r for r in rows if lo <= r["area"] < hi]) for lo, hi, label in SIZE_BUCKETS]
    families = sorted({source_family(r["source"]) for r in rows})
    groups += [("source", f, [r for r in rows if source_family(r["source"]) == f]) for f in families]
    groups += [("change", "with a colour transfer", [r for r in rows if "transfer" in r["change"]]),
               ("change", "light and colour only", [r for r in rows if "transfer" not in r["change"]])]
    return [{"by": by, "group": g, **summarise(sel)} for by, g, sel in groups if sel]


def evaluate(folder: Path, harmonizer, report: Path | None = None, on_pair=None) -> dict:
    rows, images = measure(folder, harmonizer, on_pair, keep=report is not None)
    result = {"data": str(folder), "summary": summarise(rows), "breakdown": breakdown(rows)}
    if report is not None and rows:
        result["picture"] = str(picture(rows, images, Path(report)))
    result["per_pair"] = rows
    return result


def picture(rows: list[dict], images: dict, folder: Path) -> Path:
    """``folder/harmonize_cases.png``: the pairs the harmonizer helped least, a median one, and the
    one it helped most (by fMSE against the composite's), each cropped around its object and
    labelled with each method's fMSE."""
    from ..composite import compositing
    from ..files import imageio

    gain = np.array([r["harmonized"]["fmse"] - r["composite"]["fmse"] for r in rows])
    order = np.argsort(gain)
    picks = [("worst", order[-1]), ("median", order[len(order) // 2]), ("best", order[0])]
    strips = []
    for label, i in picks:
        r, im = rows[i], images[rows[i]["name"]]
        ys, xs = np.nonzero(im["mask"])
        pad = max(16, (xs.max() - xs.min() + ys.max() - ys.min()) // 4)  # the object and what surrounds it
        y0, y1 = max(0, ys.min() - pad), ys.max() + pad + 1
        x0, x1 = max(0, xs.min() - pad), xs.max() + pad + 1
        tiles = [im[k][y0:y1, x0:x1] for k in ("composite", "stats", "harmonized", "truth")]
        names = [f"{label}: composite {r['composite']['fmse']:.0f}", f"statistics {r['stats']['fmse']:.0f}",
                 f"harmonized {r['harmonized']['fmse']:.0f}", "truth"]
        strips.append(compositing.strip([(np.clip(t, 0, 1) * 255).astype(np.uint8) for t in tiles], names, 240))
    width = max(s.shape[1] for s in strips)
    sheet = np.concatenate([np.pad(s, ((0, 6), (0, width - s.shape[1]), (0, 0)), constant_values=255)
                            for s in strips], 0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "harmonize_cases.png"
    imageio.write_image(path, sheet)
    return path


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [f"{s['n']} held-out pairs ({result['data']}), at each photo's resolution; MSE and fMSE on 0-255.", "",
             "| method | MSE | fMSE (mean / median) | PSNR dB | worse than the composite |", "|---|---|---|---|---|"]
    for m in METHODS:
        r = s[m]
        lines.append(f"| {LABELS[m]} | {r['mse']:.1f} | {r['fmse']:.1f} / {r['fmse_median']:.1f} | {r['psnr']:.2f} | "
                     + ("-" if m == "composite" else f"{100 * r['worse']:.0f} %") + " |")
    lines += ["", "| pairs by | | n | fMSE: composite / statistics / harmonizer | worse: statistics / harmonizer |",
              "|---|---|---|---|---|"]
    for e in result["breakdown"]:
        lines.append(f"| {e['by']} | {e['group']} | {e['n']} | {e['composite']['fmse']:.0f} / {e['stats']['fmse']:.0f} / "
                     f"{e['harmonized']['fmse']:.0f} | {100 * e['stats']['worse']:.0f} % / "
                     f"{100 * e['harmonized']['worse']:.0f} % |")
    return "\n".join(lines)
