"""The composite job: load inputs, run the generators in batches at low resolution, write outputs.

Decoding and encoding run on a small thread pool (OpenCV releases the GIL) while the network runs
on the main thread; one failing item never stops the others and never leaves a partial output.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import atomic, compositing, frames, imageio
from .errors import StganError, unexpected
from .inputs import Item
from .modelstore import LoadedModel, Placement


@dataclass
class Options:
    iterations: int | None = None  # None: the model's default_iterations (all generators if it has none)
    box: tuple[float, float, float, float] | None = None
    at: tuple[float, float] | None = None
    scale: float | None = None
    init: Path | None = None
    save_warp: bool = False
    save_mask: bool = False
    steps_dir: Path | None = None
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS
    batch_size: int = 8
    place: str = "auto"  # auto (faces for a glasses model) | face | scene
    faces: str = "all"  # all | largest
    exclusive: bool = False  # never replace an output that exists when it is written (batches)
    trust_region: str = "default"  # default | off | key=value,... (stgan_cli.trust_region.parse)


@dataclass
class Slot:
    """One placement the generators correct: in the whole background, or in one face's aligned frame.

    ``frame_from_image`` maps background pixels into the frame (identity for the whole background),
    ``frame_size`` is the frame's (H, W), ``frame_from_fg`` the initial placement of the cut-out in it.
    """

    frame_from_image: np.ndarray
    frame_size: tuple[int, int]
    frame_from_fg: np.ndarray
    bg_low: np.ndarray | None = None
    fg_low: np.ndarray | None = None
    face: dict | None = None

    def bg_from_fg(self, p: np.ndarray, corrected: bool) -> np.ndarray:
        """Background-pixel homography of the cut-out: initial, or corrected by the warp ``p``."""
        m = frames.bg_from_fg_pixels(p, self.frame_size, self.frame_from_fg) if corrected else self.frame_from_fg
        m = np.linalg.inv(self.frame_from_image) @ m
        return m / m[2, 2]


@dataclass
class Prepared:
    item: Item
    bg: imageio.Picture
    cutout: compositing.Cutout
    slots: list[Slot]
    timings: dict = field(default_factory=dict)
    clamped: bool = False  # the trust region shortened a correction
    limits: dict | None = None  # the trust region's limits for the (first) object


@dataclass
class Result:
    item: Item
    status: str  # ok | failed | skipped
    error: str | None = None
    homography: list | None = None
    timings: dict = field(default_factory=dict)
    clamped: bool = False

    def to_json(self) -> dict:
        d = {"foreground": str(self.item.fg), "background": str(self.item.bg), "output": str(self.item.out),
             "status": self.status}
        if self.error:
            d["error"] = self.error
        if self.homography is not None:
            d["homography"] = self.homography
            d["clamped"] = self.clamped
        if self.timings:
            d["seconds"] = {k: round(v, 4) for k, v in self.timings.items()}
        return d


def sidecar_path(out: Path) -> Path:
    return out.with_suffix(".json")


def mask_path(out: Path) -> Path:
    return out.with_name(out.stem + "_mask.png")


def _size(entry, key: str) -> tuple[int, int]:
    h, w = entry[key]["height"], entry[key]["width"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, w)):
        raise ValueError(f"{key} must be positive whole numbers, got {h!r}x{w!r}")
    return h, w


def read_init(path: Path, fg_size, bg_size) -> np.ndarray:
    """``bg_from_fg`` from a sidecar written by ``--save-warp``, rescaled if the background's size
    changed; a background of another shape (aspect ratio) is refused, never stretched."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        m = np.array(data["homography"], dtype=np.float64).reshape(3, 3)
        saved_fg, saved_bg = _size(data, "foreground_size"), _size(data, "background_size")
        if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
            raise ValueError("the homography is not finite and invertible")
    except FileNotFoundError:
        raise StganError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise StganError(f"{path}: not a stgan warp file ({type(exc).__name__}: {exc})") from None
    if tuple(saved_fg) != tuple(fg_size):
        raise StganError(f"{path}: was made for a {saved_fg[1]}x{saved_fg[0]} foreground, "
                         f"this one is {fg_size[1]}x{fg_size[0]}")
    (sh, sw), (bh, bw) = saved_bg, bg_size
    if abs(sw / sh - bw / bh) > 0.01 * (sw / sh) + 1.0 / min(bh, sh):  # rounding of a resize only
        raise StganError(f"{path}: was made for a {sw}x{sh} background, this one is {bw}x{bh} "
                         "(another shape: the placement would be stretched)")
    return frames.rescale_homography(saved_bg, bg_size) @ m


class Compositor:
    """Runs items through prepare (threads) -> predict (batched, main thread) -> finish (threads).

    ``model`` may still be loading lazily (:class:`LoadedModel`); ``on_ready`` is called once the
    weights are in, from the main thread, while the first images decode.
    """

    def __init__(self, model: LoadedModel | None, options: Options, device: str = "cpu", on_ready=None):
        self.model, self.opt, self.device, self.on_ready = model, options, device, on_ready
        if model is None and options.iterations != 0:
            raise ValueError("a model is needed unless iterations == 0")
        self.iterations = 0 if model is None else (model.config.iterations if options.iterations is None
                                                   else options.iterations)
        self.placement = model.config.placement if model else Placement()
        domain = model.config.domain if model else "generic"
        self.face_mode = options.place == "face" or (options.place == "auto" and domain == "glasses")
        self.frame_size = tuple(model.config.image_size) if model else (144, 144)
        self.trust = None
        self._cutouts: dict = {}
        self._cutout_lock = threading.Lock()

    def ready(self) -> None:
        self.trust = None
        if self.model is not None and self.iterations > 0:
            self.model.net  # noqa: B018 - loads the weights
            from . import trust_region

            self.trust = trust_region.parse(self.opt.trust_region, self.model.trust_limits())
        if self.on_ready:
            self.on_ready()
            self.on_ready = None

    # --- stages --------------------------------------------------------------------------------

    def cutout(self, fg: Path, mask: Path | None) -> compositing.Cutout:
        """The prepared cut-out, decoded once per (foreground, mask) pair: one cut-out over a
        folder of backgrounds is the common batch."""
        key = (fg, mask)
        with self._cutout_lock:
            if key not in self._cutouts:
                fg_pic = imageio.read_image(fg, self.opt.max_pixels)
                mask_pic = imageio.read_image(mask, self.opt.max_pixels) if mask else None
                if len(self._cutouts) >= 4:
                    self._cutouts.pop(next(iter(self._cutouts)))
                self._cutouts[key] = compositing.make_cutout(fg_pic, mask_pic)
            return self._cutouts[key]

    def prepare(self, item: Item) -> Prepared:
        t0 = time.perf_counter()
        cutout = self.cutout(item.fg, item.mask)
        bg = imageio.read_image(item.bg, self.opt.max_pixels)
        if bg.channels in (1, 3):
            bg.pixels = compositing.as_rgb(bg.pixels)
        t1 = time.perf_counter()
        if self.face_mode:
            slots = self.face_slots(item, bg, cutout)
        else:
            slots = [Slot(np.eye(3), bg.size, self.initial_placement(cutout, bg.size))]
            compositing.check_visible(cutout, slots[0].frame_from_fg, bg.size, "the initial placement")
            if self.iterations > 0:
                slots[0].bg_low, slots[0].fg_low = compositing.lowres_inputs(
                    bg.pixels[..., :3], cutout, slots[0].frame_from_fg, self.model.config.image_size)
        prep = Prepared(item, bg, cutout, slots, timings={"load": t1 - t0})
        prep.timings["lowres"] = time.perf_counter() - t1
        return prep

    def face_slots(self, item: Item, bg: imageio.Picture, cutout: compositing.Cutout) -> list[Slot]:
        """One slot per face: the aligned face frame, and the glasses' lenses placed on its eyes."""
        from . import faces

        found = faces.detect_faces(bg.pixels[..., :3])
        if not found:
            raise StganError(f"{item.bg}: no face found")
        if self.opt.faces == "largest":
            found = found[:1]
        eyes = faces.canonical_eyes(self.frame_size)
        lenses = faces.lens_centres(cutout.rgba[..., 3])
        if lenses is None:  # no enclosed lenses: the middles of the cut-out's left and right halves
            h, w = cutout.rgba.shape[:2]
            lenses = np.array([[0.25 * (w - 1), 0.45 * (h - 1)], [0.75 * (w - 1), 0.45 * (h - 1)]])
        frame_from_fg = faces.similarity(lenses + cutout.crop_origin, eyes)
        slots = []
        for face in found:
            frame_from_image = faces.similarity(face.eyes, eyes)
            slot = Slot(frame_from_image, self.frame_size, frame_from_fg,
                        face={"box": list(face.box), "eyes": face.eyes.round(2).tolist(), "eyes_found": face.eyes_found})
            if self.iterations > 0:
                bg_f = imageio.to_unit_float(bg.pixels[..., :3])
                slot.bg_low = compositing.warp_premultiplied(bg_f, frame_from_image, self.frame_size, replicate=True)
                slot.fg_low = compositing.warp_premultiplied(cutout.rgba, frame_from_fg @ cutout.fg_from_crop,
                                                             self.frame_size)
            slots.append(slot)
        return slots

    def initial_placement(self, cutout: compositing.Cutout, bg_size) -> np.ndarray:
        o = self.opt
        if o.init is not None:
            return read_init(o.init, cutout.source_size, bg_size)
        if o.box is not None:
            compositing.check_box(o.box, bg_size)
            return compositing.place_in_box(cutout, o.box)
        if o.at is not None:
            scale = o.scale if o.scale is not None else self.placement.scale
            return compositing.place_at(cutout, o.at, scale * bg_size[1] / cutout.width)
        if tuple(cutout.source_size) == tuple(bg_size) and o.scale is None:
            return np.eye(3)  # a canvas the size of the background is already placed
        scale = o.scale if o.scale is not None else self.placement.scale
        return compositing.place_scaled(cutout, bg_size, self.placement.center, scale)

    def predict(self, batch: list[Prepared]) -> list[np.ndarray]:
        """Warp parameters of every slot of every item after each iteration: per item, a
        ``(slots, K + 1, 8)`` array."""
        if self.iterations == 0:
            return [np.zeros((len(p.slots), 1, 8)) for p in batch]
        import torch

        t0 = time.perf_counter()
        slots = [s for p in batch for s in p.slots]
        bg = torch.from_numpy(np.stack([s.bg_low for s in slots])).permute(0, 3, 1, 2).to(self.device)
        fg = torch.from_numpy(np.stack([s.fg_low for s in slots])).permute(0, 3, 1, 2).to(self.device)
        from .trust_region import TrustRegion

        limit = TrustRegion(self.trust, self.model.config.image_size) if self.trust is not None else None
        with torch.inference_mode():
            pred = self.model.net(bg, fg, iterations=self.iterations, limit=limit)
        params = torch.stack(pred.params, 1).double().cpu().numpy()
        clamped = limit.clamped.numpy() if limit is not None else np.zeros(len(slots), bool)
        dt = (time.perf_counter() - t0) / len(batch)
        out, at = [], 0
        for p in batch:
            p.timings["network"] = dt
            p.clamped = bool(clamped[at:at + len(p.slots)].any())
            if limit is not None:  # the limits in force for the first slot's object
                p.limits = {k: round(float(v[at]), 4) for k, v in limit.resolved.items()}
            out.append(params[at:at + len(p.slots)])
            at += len(p.slots)
        return out

    def finish(self, prep: Prepared, params: np.ndarray) -> Result:
        t0 = time.perf_counter()
        item = prep.item
        # per slot, the homography after each iteration (0 = the initial placement)
        homs = [[slot.bg_from_fg(p, corrected=i > 0) for i, p in enumerate(slot_params)]
                for slot, slot_params in zip(prep.slots, params)]
        if self.iterations > 0 and not self.face_mode:
            compositing.check_visible(prep.cutout, homs[0][-1], prep.bg.size, "the model's correction")
        out, alpha = self.composite_all(prep, [h[-1] for h in homs])
        t1 = time.perf_counter()
        imageio.write_image(item.out, out, prep.bg.icc, exclusive=self.opt.exclusive)
        try:  # what goes with the output; if any of it fails, the item fails whole
            if self.opt.save_mask:
                top = 65535 if out.dtype == np.uint16 else 255
                imageio.write_image(mask_path(item.out), np.round(alpha * top).astype(out.dtype))
            if self.opt.save_warp:
                atomic.write_bytes(sidecar_path(item.out), json.dumps(
                    self.sidecar(prep, params, homs), indent=2).encode())
            if self.opt.steps_dir is not None:
                self.write_steps(prep, homs, out)
        except BaseException:
            item.out.unlink(missing_ok=True)
            raise
        t2 = time.perf_counter()
        timings = dict(prep.timings, warp_blend=t1 - t0, save=t2 - t1)
        return Result(item, "ok", homography=homs[0][-1].tolist(), timings=timings, clamped=prep.clamped)

    def composite_all(self, prep: Prepared, finals: list[np.ndarray]):
        """Every slot's object onto the background in one pass; the union of their masks."""
        out, alpha = prep.bg.pixels, None
        for m in finals:
            out, a = compositing.composite(out, prep.cutout, m)
            alpha = a if alpha is None else np.maximum(alpha, a)
        return out, alpha

    # --- outputs -------------------------------------------------------------------------------

    def sidecar(self, prep: Prepared, params: np.ndarray, homs: list[list[np.ndarray]]) -> dict:
        fh, fw = prep.cutout.source_size
        bh, bw = prep.bg.size
        first = homs[0]
        data = {
            "homography": first[-1].tolist(),
            "iterations": [m.tolist() for m in first[1:]],
            "initial_homography": first[0].tolist(),
            "params": [p.tolist() for p in params[0]],
            "model": None if self.model is None else {"ref": self.model.ref, "path": str(self.model.path),
                                                      "warps": self.model.config.warps},
            "trust_region": None if prep.limits is None else {**self.trust.to_dict(), **prep.limits},
            "clamped": prep.clamped,
            "foreground": str(prep.item.fg),
            "background": str(prep.item.bg),
            "foreground_size": {"height": fh, "width": fw},
            "background_size": {"height": bh, "width": bw},
            "convention": "homography maps foreground pixel (x, y, 1) to background pixels; "
                          "pixel centres at integer coordinates",
        }
        if self.face_mode:
            data["faces"] = [{**slot.face, "homography": h[-1].tolist(), "initial_homography": h[0].tolist()}
                             for slot, h in zip(prep.slots, homs)]
        return data

    def write_steps(self, prep: Prepared, homs: list[list[np.ndarray]], final: np.ndarray) -> None:
        folder = self.opt.steps_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StganError(f"{folder}: cannot create the steps folder ({exc.strerror})") from None
        stem, ext = prep.item.out.stem, prep.item.out.suffix or ".png"
        frames = []
        count = len(homs[0])
        for i in range(count):
            img = final if i == count - 1 else self.composite_all(prep, [h[i] for h in homs])[0]
            imageio.write_image(folder / f"{stem}_step{i}{ext}", img, prep.bg.icc)
            frames.append(img)
        imageio.write_image(folder / f"{stem}_steps.png", compositing.strip(frames), prep.bg.icc)

    # --- driver --------------------------------------------------------------------------------

    def run(self, items: list[Item], on_result=None, workers: int = 2) -> list[Result]:
        """Composite every item, calling ``on_result(result)`` as each finishes (in order)."""
        results: list[Result] = []

        def guarded(fn, item, *args):
            try:
                return fn(*args)
            except StganError as exc:
                return Result(item, "failed", error=_naming(item, str(exc)))
            except MemoryError:
                return Result(item, "failed", error=_naming(item, "out of memory"))
            except Exception as exc:  # noqa: BLE001 - one broken item never stops the batch
                return Result(item, "failed", error=_naming(item, unexpected(exc)))

        def report(res):
            results.append(res)
            if on_result:
                on_result(res)

        step = max(1, self.opt.batch_size)
        chunks = [items[i:i + step] for i in range(0, len(items), step)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            def submit_prepares(chunk):
                return [pool.submit(guarded, self.prepare, it, it) for it in chunk]

            upcoming = submit_prepares(chunks[0]) if chunks else []
            self.ready()  # torch and the weights load while the first images decode
            restore_threads = self._share_cores(len(items))
            try:
                pending = []
                for index in range(len(chunks)):
                    prepared = [f.result() for f in upcoming]
                    if index + 1 < len(chunks):  # decode the next chunk while the network runs
                        upcoming = submit_prepares(chunks[index + 1])
                    ok = [p for p in prepared if isinstance(p, Prepared)]
                    try:
                        params = iter(self.predict(ok) if ok else [])
                    except Exception as exc:  # noqa: BLE001 - the chunk fails, the batch goes on
                        message = str(exc) if isinstance(exc, StganError) else unexpected(exc)
                        prepared = [Result(p.item, "failed", error=_naming(p.item, message))
                                    if isinstance(p, Prepared) else p for p in prepared]
                    for fut in pending:  # bound memory: the previous chunk is written before this one queues
                        report(fut.result())
                    pending = []
                    for p in prepared:
                        if isinstance(p, Result):
                            pending.append(_done(p))
                        else:
                            pending.append(pool.submit(guarded, self.finish, p.item, p, next(params)))
                for fut in pending:
                    report(fut.result())
            finally:
                restore_threads()
        return results

    def _share_cores(self, count: int):
        """In a batch on the CPU, give the network one thread: the decode/encode workers keep the
        other cores busy, and torch's own threads would only contend with them (+20% images/s on
        2 cores, benchmarks/composite.py).  Returns a function that restores the setting."""
        if count < 2 or self.iterations == 0 or not str(self.device).startswith("cpu"):
            return lambda: None
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        return lambda: torch.set_num_threads(before)


def _naming(item: Item, message: str) -> str:
    """A failure line that always says which files it is about."""
    if str(item.bg) in message or str(item.fg) in message or (item.mask and str(item.mask) in message):
        return message
    return f"{item.fg} on {item.bg}: {message}"


class _done:
    """A finished result that quacks like a future."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value
