"""Evaluation on real photos at full resolution (a ``stgan data from-photos`` folder).

Each case is a photo with one object removed and that object's cut-out, whose true placement is
known (the canvas the size of the photo is the truth: ``bg_from_fg = I``).  A case starts from a
placement made by one of three protocols, and every model is run from exactly that placement with
the code path of ``stgan composite`` (the low-resolution inputs of :func:`compositing.lowres_inputs`,
the full-resolution transfer of :func:`frames.bg_from_fg_pixels`):

- ``box``: the user's protocol.  The true box, its centre shifted by ``N(0, std)`` of the object's
  width and height and its size scaled by ``exp(N(0, std))``, placed like ``--box`` (fitted,
  aspect kept, centred).
- ``sl3``: the paper's protocol.  The truth moved by sl(3) noise of the model-frame canvas.
- ``truth``: the true placement itself; a good model barely moves it.

The filled hole shows where the object was; ``--decoys`` adds a second one at the mirror of the
truth about each start (:func:`with_decoys`), so that a model gains nothing from aiming for holes.

Errors are measured on the photo's pixels: the mean distance of the object's four box corners from
where they truly are (px, and % of the photo's diagonal), the share of cases a model leaves *worse*
than its starting placement, the change of the object's area, and the IoU of the placed box with the
true one.  Conventions are those of :mod:`stgan_cli.core.geometry`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..composite import compositing
from ..core import frames
from ..core.perturb import PAPER_STD
from ..files import imageio
from ..errors import StganError

PROTOCOLS = ("box", "sl3", "truth")
BOX_STD = 0.12  # the user's rough box: shifted and scaled by ~12 % of the object's size
WORSE_BY = 1e-3  # a case counts as made worse when the error grows by more than this fraction of the diagonal (%)


# Rows of the breakdown (issue 33): an average over all pairs hides a bucket where a model does
# nothing or harms.  Area share of the photo, lower bound included.
SIZE_BUCKETS = ((0.0, 0.05, "< 5 %"), (0.05, 0.15, "5-15 %"), (0.15, 0.40, "15-40 %"), (0.40, float("inf"), "> 40 %"))


@dataclass
class Case:
    name: str
    bg: np.ndarray  # RGB uint8/uint16, full resolution
    cutout: compositing.Cutout  # cropped from the object canvas; the canvas is the photo's size
    source: str = "unknown"  # where the photo came from (meta.jsonl's ``source``)
    category: str = ""

    @property
    def area(self) -> float:
        """The object's share of the photo (its mask's pixels over the photo's)."""
        return float((self.cutout.rgba[..., 3] > 0.5).sum()) / (self.size[0] * self.size[1])

    @property
    def size(self) -> tuple[int, int]:
        return self.bg.shape[:2]

    @property
    def diagonal(self) -> float:
        return float(np.hypot(*self.size))

    def corners(self) -> np.ndarray:
        """The object's box corners ``(4, 2)`` in foreground (= photo) pixels, outer edges."""
        x1, y1, x2, y2 = self.cutout.object_box()
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])


def is_photo_dataset(folder: Path) -> bool:
    """A ``from-photos`` folder (or one of its splits): its samples name the photo they came from."""
    folder = Path(folder)
    meta = folder / "meta.jsonl" if (folder / "meta.jsonl").exists() else folder / "test" / "meta.jsonl"
    if not meta.exists():
        return False
    with open(meta, encoding="utf-8") as fh:
        first = fh.readline()
    try:
        return "image" in json.loads(first) and "bbox" in json.loads(first)
    except ValueError:
        return False


def load_cases(folder: Path, max_pixels: int = imageio.DEFAULT_MAX_PIXELS) -> list[Case]:
    """Every pair of a ``from-photos`` split (``test/`` when given the dataset's root)."""
    from ..data.datasets import dataset_root, read_meta
    from ..files.imageio import list_images

    folder = Path(folder)
    if not (folder / "backgrounds").is_dir() and (folder / "test").is_dir():
        folder = folder / "test"
    folder = dataset_root(folder, None, ("backgrounds", "objects"))
    backgrounds = {p.stem: p for p in list_images(folder / "backgrounds")}
    meta = read_meta(folder)
    cases = []
    for obj in list_images(folder / "objects"):
        if obj.stem not in backgrounds:
            raise StganError(f"{obj}: no background with the same name in {folder / 'backgrounds'}")
        bg = imageio.read_image(backgrounds[obj.stem], max_pixels)
        pic = imageio.read_image(obj, max_pixels)
        if pic.size != bg.size:
            raise StganError(f"{obj}: is {pic.size[1]}x{pic.size[0]}, its background {bg.size[1]}x{bg.size[0]}")
        info = meta.get(obj.stem, {})
        cases.append(Case(obj.stem, compositing.as_rgb(bg.pixels), compositing.make_cutout(pic),
                          source=str(info.get("source") or "unknown"), category=str(info.get("category") or "")))
    if not cases:
        raise StganError(f"{folder}: no pairs to evaluate")
    return cases


def initial_placements(cases: list[Case], protocol: str, rng: np.random.Generator, box_std: float = BOX_STD,
                       sl3_std: tuple[float, float] = PAPER_STD) -> list[np.ndarray]:
    """``bg_from_fg`` where each case starts (pixels of its photo)."""
    if protocol == "truth":
        return [np.eye(3) for _ in cases]
    if protocol == "sl3":
        from ..core.perturb import warp_noise
        p0 = warp_noise(len(cases), *sl3_std, rng=rng)
        return [frames.bg_from_fg_pixels(p, c.size, np.eye(3)) for p, c in zip(p0, cases)]
    if protocol != "box":
        raise StganError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS)}")
    out = []
    for c in cases:
        x1, y1, x2, y2 = (v + 0.5 for v in c.cutout.object_box())  # --box's convention: bg[y1:y2, x1:x2]
        w, h = x2 - x1, y2 - y1
        dx, dy, ds = rng.normal(0.0, box_std, 3)
        cx, cy, s = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h, float(np.exp(ds))
        out.append(compositing.place_in_box(c.cutout, (cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2)))
    return out


def with_decoys(cases: list[Case], inits: list[np.ndarray], dilate: float = 0.03, max_area: float = 0.4) -> list[Case]:
    """The cases with a second filled hole in each background, at the mirror of the truth about the
    start (``bg_from_fg = m @ m`` for a start ``m``; the truth is ``I``), shaped and filled like the
    real one (:func:`stgan_cli.data.photos.make_pair`).  The filled hole then no longer says where
    the object belongs: what is left is the scene (:mod:`stgan_cli.training.decoys`).  Starts at the
    truth, and decoys that would cover more than ``max_area`` of the photo, are left as they are."""
    from ..data.photos import pyramid_fill

    out = []
    for c, m in zip(cases, inits):
        if np.allclose(m, np.eye(3)):  # its mirror is the true hole itself
            out.append(c)
            continue
        h, w = c.size
        alpha = (c.cutout.rgba[..., 3] > 0).astype(np.uint8)
        hole = cv2.warpPerspective(alpha, m @ m @ c.cutout.fg_from_crop, (w, h), flags=cv2.INTER_NEAREST) > 0
        if not hole.any() or hole.mean() > max_area:
            out.append(c)
            continue
        r = max(2, int(round(dilate * np.hypot(*alpha.shape))))
        hole = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
        out.append(replace(c, bg=pyramid_fill(c.bg, hole)))
    return out


def predict(net, cases: list[Case], inits: list[np.ndarray], size, device: str = "cpu",
            batch: int = 32, limits=None, iterations: int | None = None, on_batch=None,
            detail_size=None) -> list[list[np.ndarray]]:
    """Per case, ``bg_from_fg`` after 0..K generators of ``net`` (full-resolution pixels), from
    ``inits``, through the same code as ``stgan composite`` (with its trust region ``limits``, and
    the window read at ``detail_size`` for a model with ``model.detail``); ``on_batch(count)`` after
    each batch of ``count`` cases."""
    import torch

    from ..core.trust_region import region

    out = []
    for start in range(0, len(cases), batch):
        chunk = list(zip(cases[start:start + batch], inits[start:start + batch]))
        lows = [compositing.lowres_inputs(c.bg, c.cutout, m, size) for c, m in chunk]
        bg = torch.from_numpy(np.stack([b for b, _ in lows])).permute(0, 3, 1, 2).to(device)
        fg = torch.from_numpy(np.stack([f for _, f in lows])).permute(0, 3, 1, 2).to(device)
        detail = None
        if detail_size:
            highs = [compositing.lowres_inputs(c.bg, c.cutout, m, detail_size) for c, m in chunk]
            detail = tuple(torch.from_numpy(np.stack([h[k] for h in highs])).permute(0, 3, 1, 2).to(device)
                           for k in (0, 1))
        with torch.inference_mode():
            limit = region(limits, size)
            params = torch.stack(net(bg, fg, iterations=iterations, limit=limit, detail=detail).params,
                                 1).double().cpu().numpy()
        for (c, m), ps in zip(chunk, params):
            out.append([m] + [frames.bg_from_fg_pixels(p, c.size, m) for p in ps[1:]])
        if on_batch:
            on_batch(len(chunk))
    return out


def _quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    a32, b32 = cv2.convexHull(a.astype(np.float32)), cv2.convexHull(b.astype(np.float32))
    inter, _ = cv2.intersectConvexConvex(a32, b32)
    union = cv2.contourArea(a32) + cv2.contourArea(b32) - inter
    return float(inter / union) if union > 0 else 0.0


def case_metrics(case: Case, bg_from_fg: np.ndarray) -> dict:
    """Errors of one placement against the truth (the identity), in the photo's pixels."""
    truth = case.corners()
    try:
        placed = frames.apply_homography(bg_from_fg, truth)
        if not np.all(np.isfinite(placed)):
            raise FloatingPointError
    except (FloatingPointError, ZeroDivisionError):
        placed = truth + case.diagonal  # a degenerate warp: as far as it gets
    err = float(np.linalg.norm(placed - truth, axis=1).mean())
    area = compositing.quad_area(placed) / compositing.quad_area(truth)
    return {"corner_px": err, "corner_pct": 100 * err / case.diagonal, "area_ratio": area,
            "iou": _quad_iou(placed, truth)}


def summarise(cases: list[Case], homs: list[list[np.ndarray]]) -> dict:
    """Per iteration means and medians, and how the final placement compares with the start."""
    per = [[case_metrics(c, m) for m in hs] for c, hs in zip(cases, homs)]
    k = len(per[0])
    arr = {key: np.array([[p[i][key] for i in range(k)] for p in per]) for key in per[0][0]}
    start, final = arr["corner_pct"][:, 0], arr["corner_pct"][:, -1]
    return {
        "n": len(cases),
        "corner_px": arr["corner_px"].mean(0).round(3).tolist(),
        "corner_px_median": np.median(arr["corner_px"], 0).round(3).tolist(),
        "corner_pct": arr["corner_pct"].mean(0).round(4).tolist(),
        "corner_pct_median": np.median(arr["corner_pct"], 0).round(4).tolist(),
        "area_change_pct": (100 * (arr["area_ratio"].mean(0) - 1)).round(2).tolist(),
        "area_change_abs_pct": (100 * np.abs(arr["area_ratio"] - 1).mean(0)).round(2).tolist(),
        "iou": arr["iou"].mean(0).round(4).tolist(),
        "worse_share": round(float((final > start + WORSE_BY).mean()), 4),
        "per_case_pct": arr["corner_pct"],
    }


def source_family(source: str) -> str:
    """The row a photo's source reports under: the three COCO samplings of ``../shared`` are one
    kind of photo (COCO 2017), told apart only by who sampled them; the furniture set is the other."""
    name = source.lower()
    if name.startswith("coco"):
        return "COCO photos"
    return "furniture photos" if name.startswith("furniture") else source


def groups(cases: list[Case]) -> list[tuple[str, str, np.ndarray]]:
    """``(kind, label, indices)`` for each object-size bucket and each source family with pairs."""
    area = np.array([c.area for c in cases])
    out = [("size", label, np.flatnonzero((area >= lo) & (area < hi))) for lo, hi, label in SIZE_BUCKETS]
    families = [source_family(c.source) for c in cases]
    out += [("source", f, np.flatnonzero(np.array(families) == f)) for f in sorted(set(families))]
    return [g for g in out if len(g[2])]


def breakdown(cases: list[Case], rows: list[dict]) -> list[dict]:
    """Per group of :func:`groups`: its pairs, the start's mean error (% of the diagonal) and, per
    model row of :func:`summarise` (all from the same starts), its mean, change and share made worse."""
    out = []
    for kind, label, idx in groups(cases):
        start = rows[0]["per_case_pct"][idx, 0]
        entry = {"group": kind, "label": label, "n": int(len(idx)), "identity": round(float(start.mean()), 4),
                 "models": {}}
        for r in rows[1:]:
            final = r["per_case_pct"][idx, -1]
            entry["models"][r["label"]] = {
                "corner_pct": round(float(final.mean()), 4),
                "change_pct": round(float(100 * (final.mean() / max(start.mean(), 1e-12) - 1)), 1),
                "worse_share": round(float((final > start + WORSE_BY).mean()), 4)}
        out.append(entry)
    return out


# --- report ----------------------------------------------------------------------------------------

def _panel(case: Case, m: np.ndarray, height: int, label: str) -> np.ndarray:
    out, _ = compositing.composite(case.bg, case.cutout, m)
    if out.dtype == np.uint16:
        out = (out // 257).astype(np.uint8)
    h, w = case.size
    tile = cv2.resize(np.ascontiguousarray(out[..., :3]), (max(1, round(w * height / h)), height),
                      interpolation=cv2.INTER_AREA)
    size = min(0.6, 0.6 * (tile.shape[1] - 12) / max(1, cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0]))
    cv2.putText(tile, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def report(folder: Path, cases: list[Case], homs: list[list[np.ndarray]], summary: dict, title: str,
           height: int = 300) -> None:
    """``grid.png``: worst, median and best cases (start | model | truth) and ``histogram.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    final = summary["per_case_pct"][:, -1]
    order = np.argsort(final)
    rows = []
    for name, i in (("worst", order[-1]), ("median", order[len(order) // 2]), ("best", order[0])):
        c, hs = cases[i], homs[i]
        start, end = summary["per_case_pct"][i, 0], final[i]
        tiles = [_panel(c, hs[0], height, f"{name}: start {start:.1f}% diag"),
                 _panel(c, hs[-1], height, f"{title}: {end:.1f}%"), _panel(c, np.eye(3), height, "truth")]
        row = np.concatenate([t for tile in tiles for t in (tile, np.full((height, 6, 3), 255, np.uint8))][:-1], 1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows], 0)
    imageio.write_image(folder / "grid.png", grid)
    imageio.write_image(folder / "histogram.png", histogram(summary["per_case_pct"][:, 0], final, title))


def histogram(start: np.ndarray, final: np.ndarray, title: str, bins: int = 24) -> np.ndarray:
    """Two overlaid histograms of corner error (% of the diagonal): start (grey) and the model (blue)."""
    top = float(np.percentile(np.concatenate([start, final]), 98)) or 1.0
    edges = np.linspace(0, top, bins + 1)
    hs, hf = np.histogram(np.clip(start, 0, top), edges)[0], np.histogram(np.clip(final, 0, top), edges)[0]
    h, w, left, bottom = 300, 640, 40, 40
    img = np.full((h, w, 3), 255, np.uint8)
    peak = max(hs.max(), hf.max(), 1)
    bw = (w - left - 10) / bins
    for k, (a, b) in enumerate(zip(hs, hf)):
        x0 = int(left + k * bw)
        cv2.rectangle(img, (x0, h - bottom - int(a / peak * (h - bottom - 30))), (int(x0 + bw / 2), h - bottom),
                      (160, 160, 160), -1)
        cv2.rectangle(img, (int(x0 + bw / 2), h - bottom - int(b / peak * (h - bottom - 30))), (int(x0 + bw) - 1, h - bottom),
                      (30, 120, 200), -1)  # RGB: blue
    for k in range(0, bins + 1, 4):
        x = int(left + k * bw)
        cv2.putText(img, f"{edges[k]:.1f}", (min(x - 10, w - 34), h - bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    cv2.putText(img, f"corner error, % of diagonal: start (grey) vs {title} (blue)", (left, 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img
