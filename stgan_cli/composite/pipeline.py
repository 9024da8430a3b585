"""The composite job: load inputs, run the generators in batches at low resolution, write outputs.

Decoding and encoding run on a small thread pool (OpenCV releases the GIL) while the network runs
on the main thread; one failing item never stops the others and never leaves a partial output.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..files import imageio
from . import compositing, outputs, placement
from ..errors import StganError, unexpected
from .inputs import Item
from .job import Options, Prepared, Rendered, Result
from ..model.config import Placement
from ..model.modelstore import LoadedModel
from .placement import Slot


class Compositor:
    """Runs items through prepare (threads) -> predict (batched, main thread) -> finish (threads).

    ``model`` may still be loading lazily (:class:`LoadedModel`); ``on_ready`` is called once the
    weights are in, from the main thread, while the first images decode.
    """

    def __init__(self, model: LoadedModel | None, options: Options, device: str = "cpu", on_ready=None,
                 resolve_device=None):
        self.model, self.opt, self.on_ready = model, options, on_ready
        # ``device`` is what the user asked for (``auto`` included); the torch engine runs on
        # ``resolve_device(device)``, resolved only when that engine opens (it imports torch).
        self.device_name, self.device, self.resolve_device = device, device, resolve_device
        if resolve_device is None and device == "auto":  # nothing to resolve it with: the CPU
            self.device = "cpu"
        if model is None and options.iterations != 0:
            raise ValueError("a model is needed unless iterations == 0")
        self.iterations = 0 if model is None else (model.config.iterations if options.iterations is None
                                                   else options.iterations)
        self.placement = model.config.placement if model else Placement()
        domain = model.config.domain if model else "generic"
        self.face_mode = options.place == "face" or (options.place == "auto" and domain == "glasses")
        # no model (--iterations 0 alone) means the default, an indoor one
        self.search_mode = (options.place == "auto" and (model is None or domain == "indoor") and options.box is None
                            and options.at is None and options.init is None)
        self.frame_size = tuple(model.config.image_size) if model else (144, 144)
        self.trust = None
        self.engine = None  # opened by ready(): stgan_cli.model.onnx_engine.OnnxEngine or TorchEngine
        self.engine_note: str | None = None  # why auto did not take the onnx engine
        self._cutouts: dict = {}
        self._cutout_lock = threading.Lock()
        self._critic_state: tuple | None = None  # (critic or None, why none)
        self.harmonizer = None  # opened by ready() with --harmonize
        self._harmonizer_note: str | None = None  # why it runs on PyTorch; said once, with the first item

    def ready(self, count: int = 1) -> None:
        """Open the engine and the trust region, for a run of ``count`` items."""
        self.trust = None
        if self.model is not None and self.iterations > 0:
            from ..core import trust_region

            if self.engine is None:
                self._open_engine(count)
            self.trust = trust_region.parse(self.opt.trust_region, self.model.trust_limits())
        if self.opt.harmonize and self.harmonizer is None:
            from . import harmonize

            self.harmonizer, self._harmonizer_note = harmonize.open_harmonizer(self.opt.harmonizer, self.opt.engine)
        if self.on_ready:
            self.on_ready()
            self.on_ready = None

    def _open_engine(self, count: int) -> None:
        from ..model import onnx_engine

        name, self.engine_note = onnx_engine.choose(self.model, self.opt.engine, self.device_name)
        if name == "onnx":
            try:
                # In a batch the network gets one thread, as in _share_cores for torch.
                self.engine = onnx_engine.open_engine(self.model, "onnx", threads=1 if count > 1 else None)
            except StganError as exc:
                if self.opt.engine == "onnx":
                    raise
                name, self.engine_note = "torch", str(exc)
        if name == "torch":
            if self.resolve_device:
                self.device = self.resolve_device(self.device_name)
                self.model.to(self.device)
            self.engine = onnx_engine.open_engine(self.model, "torch", self.device)

    def take_over(self, previous: "Compositor | None") -> "Compositor":
        """What ``previous`` (a compositor of the same model) has opened and this one would open the
        same: the engine, the harmonizer and the critic.  The Python API composites many times with
        one model, each call with options of its own."""
        if previous is None or previous.model is not self.model:
            return self
        if previous.engine is not None and (previous.opt.engine, previous.device_name) == (self.opt.engine, self.device_name):
            self.engine, self.engine_note, self.device = previous.engine, previous.engine_note, previous.device
        if previous.harmonizer is not None and (previous.opt.harmonizer, previous.opt.engine) == \
                (self.opt.harmonizer, self.opt.engine):
            self.harmonizer = previous.harmonizer
        if previous._critic_state is not None and previous._critic_state[0] is not None \
                and previous.opt.critic == self.opt.critic:
            self._critic_state = previous._critic_state
        return self

    # --- stages --------------------------------------------------------------------------------

    def cutout(self, fg: Path, mask: Path | None) -> tuple[compositing.Cutout, list[str]]:
        """The prepared cut-out, decoded once per (foreground, mask) pair (one cut-out over a
        folder of backgrounds is the common batch), and what the decoder said of damaged files."""
        if isinstance(fg, imageio.Picture):  # in memory (the Python API): nothing to decode or cache
            return compositing.make_cutout(fg, mask), []
        key = (fg, mask)
        with self._cutout_lock:
            if key not in self._cutouts:
                fg_pic = imageio.read_image(fg, self.opt.max_pixels)
                mask_pic = imageio.read_image(mask, self.opt.max_pixels) if mask else None
                if len(self._cutouts) >= 4:
                    self._cutouts.pop(next(iter(self._cutouts)))
                damage = [pic.damage for pic in (fg_pic, mask_pic) if pic is not None and pic.damage]
                self._cutouts[key] = (compositing.make_cutout(fg_pic, mask_pic), damage)
            return self._cutouts[key]

    def prepare(self, item: Item) -> Prepared:
        t0 = time.perf_counter()
        cutout, damage = self.cutout(item.fg, item.mask)
        bg = item.bg if isinstance(item.bg, imageio.Picture) else imageio.read_image(item.bg, self.opt.max_pixels)
        if bg.channels in (1, 3):
            bg.pixels = compositing.as_rgb(bg.pixels)
        t1 = time.perf_counter()
        notes = damage + ([bg.damage] if bg.damage else [])
        if self.face_mode:
            slots, found = placement.face_slots(item.bg, bg, cutout, self.frame_size, self.opt.faces,
                                                self.iterations > 0, self.opt.detector, self.opt.skip_glasses_faces)
            notes += found
        found, starts = None, []
        critic = self._critic() if self.search_mode and not self._placed_canvas(cutout, bg.size) else None
        if self.search_mode and critic is None and self._critic_state and self._critic_state[1]:
            with self._cutout_lock:  # said once per run, not per photo
                said, self._critic_state = self._critic_state[1], (None, "")
            notes.append(said)
        if not self.face_mode and critic is not None:
            from . import auto
            from ..core.boxes import to_pixels

            found = auto.search(critic, bg.pixels, cutout.rgba, self.opt.candidates, self.opt.scale)
            starts = [compositing.place_in_box(cutout, to_pixels(b, bg.size))
                      for b in found.boxes[:max(1, self.opt.top_k)]]
        elif not self.face_mode:
            starts = [placement.initial_placement(cutout, bg.size, self.opt, self.placement)]
        if not self.face_mode:
            slots = [self._scene_slot(bg, cutout, m) for m in starts]
        prep = Prepared(item, bg, cutout, slots[:1] if found is not None else slots, timings={"load": t1 - t0},
                        notes=notes, search=found, alternatives=slots[1:] if found is not None else [])
        prep.timings["lowres"] = time.perf_counter() - t1
        return prep

    def _critic(self):
        """The placement critic, opened once; None (and a note) when none is installed and the user
        named none: the model's fixed spot then."""
        with self._cutout_lock:
            if self._critic_state is None:
                from . import auto

                try:
                    self._critic_state = (auto.open_critic(self.opt.critic), None)
                except StganError as exc:
                    if self.opt.critic is not None:
                        raise
                    self._critic_state = (None, f"no placement critic ({exc}): the model's fixed spot")
            return self._critic_state[0]

    def _placed_canvas(self, cutout, bg_size) -> bool:
        """A cut-out the size of the background, without --scale: already placed."""
        return tuple(cutout.source_size) == tuple(bg_size) and self.opt.scale is None

    def _scene_slot(self, bg, cutout, bg_from_fg: np.ndarray) -> Slot:
        slot = Slot(np.eye(3), bg.size, bg_from_fg)
        compositing.check_visible(cutout, bg_from_fg, bg.size, "the initial placement")
        if self.iterations > 0:
            slot.bg_low, slot.fg_low = compositing.lowres_inputs(bg.pixels[..., :3], cutout, bg_from_fg,
                                                                 self.model.config.image_size)
            if self.model.config.detail:  # the window's source: the photo at the detail resolution
                slot.bg_detail, slot.fg_detail = compositing.lowres_inputs(bg.pixels[..., :3], cutout, bg_from_fg,
                                                                           self.model.config.detail_size)
        return slot

    def predict(self, batch: list[Prepared]) -> list[np.ndarray]:
        """Warp parameters of every slot of every item after each iteration: per item, a
        ``(slots, K + 1, 8)`` array."""
        if self.iterations == 0:
            return [np.zeros((len(p.slots) + len(p.alternatives), 1, 8)) for p in batch]
        t0 = time.perf_counter()
        slots = [s for p in batch for s in p.slots + p.alternatives]
        bg = np.ascontiguousarray(np.stack([s.bg_low for s in slots]).transpose(0, 3, 1, 2))
        fg = np.ascontiguousarray(np.stack([s.fg_low for s in slots]).transpose(0, 3, 1, 2))
        detail = None
        if self.model.config.detail:
            pairs = [s.detail_inputs(self.model.config.detail_size) for s in slots]
            detail = tuple(np.ascontiguousarray(np.stack([d[k] for d in pairs]).transpose(0, 3, 1, 2)) for k in (0, 1))
        run = self.engine.predict(bg, fg, self.iterations, self.trust, detail=detail)
        params, clamped = run.params, run.clamped
        dt = (time.perf_counter() - t0) / len(batch)
        out, at = [], 0
        for p in batch:
            p.timings["network"] = dt
            p.clamped = bool(clamped[at:at + len(p.slots)].any())  # of the output's own slots
            if run.resolved is not None:  # the limits in force for the first slot's object
                p.limits = {k: round(float(v[at]), 4) for k, v in run.resolved.items()}
            n = len(p.slots) + len(p.alternatives)
            out.append(params[at:at + n])
            at += n
        return out

    def render(self, prep: Prepared, params: np.ndarray) -> Rendered:
        """The composite of a prepared item from its predicted parameters, in memory."""
        # per slot, the homography after each iteration (0 = the initial placement)
        homs = [[slot.initial()] + [slot.corrected(p) for p in slot_params[1:]]
                for slot, slot_params in zip(prep.slots + prep.alternatives, params)]
        homs, alt_homs = homs[:len(prep.slots)], homs[len(prep.slots):]
        if self.iterations > 0 and not self.face_mode:
            compositing.check_visible(prep.cutout, homs[0][-1], prep.bg.size, "the model's correction")
        out, alpha, harmonized = self._composite(prep, [h[-1] for h in homs])
        return Rendered(out, alpha, homs, alt_homs, params[:len(prep.slots)], harmonized)

    def finish(self, prep: Prepared, params: np.ndarray) -> Result:
        t0 = time.perf_counter()
        item = prep.item
        r = self.render(prep, params)
        out, alpha, homs, alt_homs, params, harmonized = r.image, r.alpha, r.homs, r.alternatives, r.params, r.harmonize
        t1 = time.perf_counter()
        data = None
        if self.opt.save_warp:
            data = outputs.sidecar(prep, params, homs, self.model, self.trust, self.face_mode,
                                   getattr(self.engine, "name", None))
            if harmonized is not None:
                data["harmonize"] = harmonized
        heat = None
        if self.opt.heatmap and prep.search is not None:
            from . import auto

            heat = auto.heatmap(prep.search, prep.bg.pixels)
        outputs.write(prep, self.opt, out, alpha, homs, data,
                      [self._composite(prep, [h[-1]])[0] for h in alt_homs], heat)
        t2 = time.perf_counter()
        timings = dict(prep.timings, warp_blend=t1 - t0, save=t2 - t1)
        chosen = None if prep.search is None else prep.search.summary(prep.bg.size, 1 + len(prep.alternatives))
        notes = prep.notes
        if self._harmonizer_note:  # after ready(), unlike prepare(): said once per run, with the first result
            with self._cutout_lock:
                said, self._harmonizer_note = self._harmonizer_note, None
            notes = notes + [said] if said else notes
        return Result(item, "ok", homography=homs[0][-1].tolist(), timings=timings, clamped=prep.clamped,
                      notes=notes, placement=chosen, harmonize=harmonized)

    def _composite(self, prep: Prepared, finals: list[np.ndarray]):
        """(image, mask, what --harmonize did or None) of the objects at ``finals``."""
        if self.harmonizer is None:
            return (*outputs.composite_all(prep.bg.pixels, prep.cutout, finals), None)
        from . import harmonize

        out, alpha, info = harmonize.composite_all(self.harmonizer, prep.bg.pixels, prep.cutout, finals)
        return out, alpha, {"harmonizer": self.opt.harmonizer or harmonize.DEFAULT,
                            "engine": getattr(self.harmonizer, "name", "torch"), "objects": info}

    # --- driver --------------------------------------------------------------------------------

    def run(self, items: list[Item], on_result=None, workers: int = 2) -> list[Result]:
        """Composite every item, calling ``on_result(result)`` as each finishes (in order)."""
        results: list[Result] = []

        def guarded(fn, item, *args):
            try:
                return fn(*args)
            except StganError as exc:
                return Result.failure(item, str(exc))
            except MemoryError:
                return Result.failure(item, "out of memory")
            except Exception as exc:  # noqa: BLE001 - one broken item never stops the batch
                return Result.failure(item, unexpected(exc))

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
            self.ready(len(items))  # the engine and the weights load while the first images decode
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
                        prepared = [Result.failure(p.item, message)
                                    if isinstance(p, Prepared) else p for p in prepared]
                    for fut in pending:  # bound memory: the previous chunk is written before this one queues
                        report(fut.result())
                    pending = []
                    for p in prepared:
                        if isinstance(p, Result):
                            pending.append(_finished(p))
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
        if count < 2 or self.iterations == 0 or not str(self.device).startswith("cpu") or \
                getattr(self.engine, "name", None) != "torch":
            return lambda: None
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        return lambda: torch.set_num_threads(before)


def _finished(value) -> Future:
    done = Future()
    done.set_result(value)
    return done
