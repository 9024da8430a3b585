"""What a composite writes besides the image: the object's mask, the ``--save-warp`` sidecar and the
per-iteration steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import compositing
from ..files import atomic, imageio
from ..errors import StganError


def sidecar_path(out: Path) -> Path:
    return out.with_suffix(".json")


def mask_path(out: Path) -> Path:
    return out.with_name(out.stem + "_mask.png")


def alternative_path(out: Path, k: int) -> Path:
    """Where ``--top-k`` writes the ``k``-th best placement (2, 3, ...)."""
    return out.with_name(f"{out.stem}_top{k}{out.suffix or '.png'}")


def heatmap_path(out: Path) -> Path:
    return out.with_name(out.stem + "_heatmap.png")


def composite_all(bg: np.ndarray, cutout: compositing.Cutout, finals: list[np.ndarray]):
    """Every slot's object onto the background ``bg`` in one pass; the union of their masks."""
    out, alpha = bg, None
    for m in finals:
        out, a = compositing.composite(out, cutout, m)
        alpha = a if alpha is None else np.maximum(alpha, a)
    return out, alpha


def sidecar(prep, params: np.ndarray, homs: list[list[np.ndarray]], model, trust, face_mode: bool,
            engine: str | None = None) -> dict:
    """The ``--save-warp`` JSON of one composite: the homographies (final, per iteration, initial),
    the warp parameters, the model, engine and trust region that made them, and the sizes they are for."""
    fh, fw = prep.cutout.source_size
    bh, bw = prep.bg.size
    first = homs[0]
    data = {
        "homography": first[-1].tolist(),
        "iterations": [m.tolist() for m in first[1:]],
        "initial_homography": first[0].tolist(),
        "params": [p.tolist() for p in params[0]],
        "model": None if model is None else {"ref": model.ref, "path": str(model.path), "warps": model.config.warps,
                                           "engine": engine},
        "trust_region": None if prep.limits is None else {**trust.to_dict(), **prep.limits},
        "clamped": prep.clamped,
        "foreground": str(prep.item.fg),
        "background": str(prep.item.bg),
        "foreground_size": {"height": fh, "width": fw},
        "background_size": {"height": bh, "width": bw},
        "convention": "homography maps foreground pixel (x, y, 1) to background pixels; "
                      "pixel centres at integer coordinates",
    }
    if prep.search is not None:
        data["placement"] = prep.search.summary(prep.bg.size, 1 + len(prep.alternatives))
    if face_mode:
        data["faces"] = [{**slot.face, "homography": h[-1].tolist(), "initial_homography": h[0].tolist()}
                         for slot, h in zip(prep.slots, homs)]
    return data


def steps_paths(folder: Path, out: Path, count: int) -> list[Path]:
    """What ``--steps`` writes for ``count`` frames (the start and each iteration): one image per
    frame, then the strip."""
    stem, ext = out.stem, out.suffix or ".png"
    return [folder / f"{stem}_step{i}{ext}" for i in range(count)] + [folder / f"{stem}_steps.png"]


def written(out: Path, save_mask: bool, save_warp: bool, steps_dir: Path | None,
            iterations: int, top_k: int = 1, heatmap: bool = False) -> list[tuple[str, Path]]:
    """Every file one composite into ``out`` writes, as ``(what, path)``, the image first
    (``top_k`` and ``heatmap``: what ``--place auto`` may add)."""
    paths = [("the composite", out)]
    paths += [("an alternative placement", alternative_path(out, k)) for k in range(2, top_k + 1)]
    if heatmap:
        paths.append(("the placement heatmap", heatmap_path(out)))
    if save_mask:
        paths.append(("the mask", mask_path(out)))
    if save_warp:
        paths.append(("the warp file", sidecar_path(out)))
    if steps_dir is not None:
        paths += [("a step picture", p) for p in steps_paths(steps_dir, out, iterations + 1)]
    return paths


def write_steps(files, folder: Path, prep, homs: list[list[np.ndarray]], final: np.ndarray) -> None:
    """The composite after each iteration, and a labelled strip of them all, into ``folder``, staged
    in ``files`` (an :class:`stgan_cli.files.atomic.Together`)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(f"{folder}: cannot create the steps folder ({exc.strerror})") from None
    count = len(homs[0])
    paths = steps_paths(folder, prep.item.out, count)
    shots = []
    for i in range(count):
        img = final if i == count - 1 else composite_all(prep.bg.pixels, prep.cutout, [h[i] for h in homs])[0]
        files.write_bytes(paths[i], imageio.encode(img, imageio.output_format(paths[i]), prep.bg.icc))
        shots.append(img)
    labels = ["start"]
    for i in range(1, count):
        still = all(np.allclose(h[i], h[i - 1], atol=1e-9) for h in homs)
        labels.append(f"after G{i}" + ((" (held by the trust region)" if prep.clamped else " (no move)") if still else ""))
    files.write_bytes(paths[-1], imageio.encode(compositing.strip(shots, labels), ".png", prep.bg.icc))


def write(prep, opts, image: np.ndarray, alpha: np.ndarray, homs, sidecar_data: dict | None,
          alternatives: list[np.ndarray], heatmap: np.ndarray | None) -> None:
    """Everything a composite writes (``opts``: :class:`~stgan_cli.composite.job.Options`): the image,
    then what the options ask for beside it.  They land together: if any of it fails, the item fails
    whole and the previous files stay as they were."""
    out, exclusive = prep.item.out, opts.exclusive
    with atomic.Together() as files:
        files.write_bytes(out, imageio.encode(image, imageio.output_format(out), prep.bg.icc), exclusive)
        if opts.save_mask:
            top = 65535 if image.dtype == np.uint16 else 255
            files.write_bytes(mask_path(out), imageio.encode(np.round(alpha * top).astype(image.dtype), ".png"),
                              exclusive)
        if sidecar_data is not None:
            files.write_bytes(sidecar_path(out), json.dumps(sidecar_data, indent=2).encode(), exclusive)
        if opts.steps_dir is not None:
            write_steps(files, opts.steps_dir, prep, homs, image)
        for k, other in enumerate(alternatives, start=2):
            path = alternative_path(out, k)
            files.write_bytes(path, imageio.encode(other, imageio.output_format(path), prep.bg.icc), exclusive)
        if heatmap is not None:
            files.write_bytes(heatmap_path(out), imageio.encode(heatmap, ".png"), exclusive)

