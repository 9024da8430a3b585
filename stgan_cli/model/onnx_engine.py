"""The generators without PyTorch: a model folder's ``model.onnx`` run by onnxruntime.

``model.onnx`` holds one update of the warp (:class:`stgan_cli.model.export.Step`): given the background,
the foreground canvas and the current parameters ``p``, what the generator asks for.  A model with
one generator per iteration has one graph per generator (``model.step2.onnx``, .. beside it).  The
loop of :func:`stgan_cli.model.nets.iterate` runs here in numpy, with the same trust region between
updates (:mod:`stgan_cli.core.trust_region` is numpy for both engines), so a composite made this way puts
the object where PyTorch puts it, within :data:`stgan_cli.model.parity.TOLERANCE_PX` of the model frame.

The graph is stamped with the SHA-256 of the ``model.safetensors`` it was exported from, and with the
architecture, warp count and frame size; one that does not match its folder is refused (retrained
weights never run through a stale graph).  ``stgan export MODEL --format engine`` (re)makes it.

Importing this module imports neither torch nor onnxruntime: they load when an engine opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StganError
from .kinds import DIGEST_KEY, ONNX_FILE as ENGINE_FILE, WEIGHTS_FILE, weights_digest
ENGINES = ("auto", "torch", "onnx")
_STAMP_KEYS = (DIGEST_KEY, "stgan.arch", "stgan.warps", "stgan.image_size")


def step_path(first: Path, index: int) -> Path:
    """The graph of update ``index`` (0-based) when the first one is ``first``."""
    first = Path(first)
    return first if index == 0 else first.with_name(f"{first.stem}.step{index + 1}{first.suffix}")


def stamp(folder: Path, config) -> dict[str, str]:
    """What a graph exported from the model in ``folder`` is stamped with."""
    return {DIGEST_KEY: weights_digest(folder), "stgan.arch": config.arch,
            "stgan.warps": str(config.warps), "stgan.image_size": "x".join(str(v) for v in config.image_size)}


@dataclass
class Run:
    """What one batch through the generators gives, whichever the engine."""

    params: np.ndarray  # (B, K + 1, 8) float64: p after 0..K generators
    clamped: np.ndarray  # (B,) bool: the trust region shortened an update
    resolved: dict | None  # per measure, (B,) limits in force; None without a trust region


class OnnxEngine:
    """``model.onnx`` of a model folder, checked against the folder and opened with onnxruntime."""

    name = "onnx"

    def __init__(self, graph: Path, folder: Path, config, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise StganError("the onnx engine needs onnxruntime: pip install 'stgan-cli[export]'") from None
        self.config = config
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.graph, self.folder, self.opts, self.ort = Path(graph), Path(folder), opts, ort
        self.expected = stamp(folder, config)
        self.sessions: dict[int, object] = {}
        self.count = 1
        self.count = int(self._open(0).get_modelmeta().custom_metadata_map["stgan.steps"])
        for index in range(1, self.count):  # all there now; each is loaded and checked when first used
            if not step_path(self.graph, index).is_file():
                self._open(index)  # says which one is missing
        self.size = tuple(config.image_size)

    def _open(self, index: int):
        """The checked session of update ``index`` (0-based); opened on first use, so a model whose
        later generators a run does not use never loads them."""
        if index in self.sessions:
            return self.sessions[index]
        path, folder = step_path(self.graph, index), self.folder
        if not path.is_file():
            raise StganError(f"{path}: missing (the model has {self.count} generators; remake the graphs with "
                             f"`stgan export {folder} --format engine`)")
        try:
            session = self.ort.InferenceSession(str(path), self.opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a broken file
            raise StganError(f"{path}: not a readable ONNX graph ({str(exc).splitlines()[0][:200]})") from None
        meta = session.get_modelmeta().custom_metadata_map
        for key in _STAMP_KEYS:
            if meta.get(key) != self.expected[key]:
                what = "weights" if key == DIGEST_KEY else key.split(".", 1)[1].replace("_", " ")
                raise StganError(f"{path}: was exported from other {what} than {folder / WEIGHTS_FILE}; "
                                 f"remake it with `stgan export {folder} --format engine`")
        if meta.get("stgan.step") != str(index + 1) or not meta.get("stgan.steps", "").isdigit():
            raise StganError(f"{path}: not the graph of generator {index + 1}; remake the graphs "
                             f"with `stgan export {folder} --format engine`")
        self.sessions[index] = session
        return session

    def predict(self, bg: np.ndarray, fg: np.ndarray, iterations: int, limits=None,
                p0: np.ndarray | None = None, detail=None) -> Run:
        """``iterations`` updates on ``bg`` (B, 3, H, W) and the premultiplied canvas ``fg``
        (B, 4, H, W), float32 in [0, 1], from ``p0`` (B, 8; zeros), with the trust region ``limits``
        (:class:`~stgan_cli.core.trust_region.Limits`) or none.  ``detail``: the two again at the
        model's detail resolution (``model.detail``; needed then)."""
        from ..core.trust_region import region

        bg = np.ascontiguousarray(bg, np.float32)
        fg = np.ascontiguousarray(fg, np.float32)
        p = np.zeros((bg.shape[0], 8), np.float32) if p0 is None else np.asarray(p0, np.float32)
        limit = region(limits, self.size)
        if limit is not None:
            limit.start(fg, p)
        params = [p]
        feed = {"bg": bg, "fg": fg}
        if self.config.detail:
            if detail is None:
                raise StganError(f"{self.graph}: the model reads its window at {self.config.detail}x the frame; "
                                 "pass the inputs at that resolution too")
            feed.update(bg_detail=np.ascontiguousarray(detail[0], np.float32),
                        fg_detail=np.ascontiguousarray(detail[1], np.float32))
        for i in range(iterations):
            session = self._open(min(i, self.count - 1))  # a shared block has one graph
            (dp,) = session.run(None, {**feed, "p": p})
            p = p + dp if limit is None else limit(p, dp).astype(np.float32)
            params.append(p)
        clamped = limit.clamped if limit is not None else np.zeros(bg.shape[0], bool)
        return Run(np.stack(params, 1).astype(np.float64), clamped, limit.resolved if limit is not None else None)


class TorchEngine:
    """The PyTorch model (:attr:`stgan_cli.model.modelstore.LoadedModel.net`)."""

    name = "torch"

    def __init__(self, model, device: str = "cpu"):
        self.model, self.device = model, device
        model.net  # noqa: B018 - loads the weights now

    def predict(self, bg: np.ndarray, fg: np.ndarray, iterations: int, limits=None,
                p0: np.ndarray | None = None, detail=None) -> Run:
        import torch

        from ..core.trust_region import region

        limit = region(limits, self.model.config.image_size)
        start = None if p0 is None else torch.from_numpy(np.asarray(p0, np.float32)).to(self.device)
        with torch.inference_mode():
            tensors = None if detail is None else tuple(torch.from_numpy(np.asarray(t, np.float32)).to(self.device)
                                                        for t in detail)
            pred = self.model.net(torch.from_numpy(bg).to(self.device), torch.from_numpy(fg).to(self.device),
                                  start, iterations=iterations, limit=limit, detail=tensors)
        params = torch.stack(pred.params, 1).double().cpu().numpy()
        clamped = limit.clamped if limit is not None else np.zeros(bg.shape[0], bool)
        return Run(params, clamped, limit.resolved if limit is not None else None)


def choose(model, engine: str, device: str) -> tuple[str, str | None]:
    """Which engine runs ``model`` for ``--engine engine`` and ``--device device``, and why not the
    other one when ``auto`` falls back to torch (None when there is nothing to say).

    ``auto`` takes onnx on the CPU (``--device auto`` or ``cpu``) when the folder has a ``model.onnx``
    and onnxruntime is installed; a GPU asked for by name always goes to torch.  ``onnx`` insists."""
    import importlib.util

    if engine not in ENGINES:
        from ..errors import UsageError

        raise UsageError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    if engine == "torch":
        return "torch", None
    graph = Path(model.path) / ENGINE_FILE
    problem = None
    if device.strip().lower() not in ("auto", "cpu"):
        problem = f"--device {device}: the onnx engine runs on the CPU"
    elif importlib.util.find_spec("onnxruntime") is None:
        problem = "onnxruntime is not installed (pip install 'stgan-cli[export]')"
    elif not graph.is_file():
        problem = f"{graph} is missing (make it with `stgan export {model.ref} --format engine`)"
    if problem is None:
        return "onnx", None
    if engine == "onnx":
        raise StganError(f"--engine onnx: {problem}")
    return "torch", problem


def open_engine(model, name: str, device: str = "cpu", threads: int | None = None):
    """An engine of kind ``name`` (see :func:`choose`) for ``model``."""
    if name == "onnx":
        return OnnxEngine(Path(model.path) / ENGINE_FILE, model.path, model.config, threads)
    return TorchEngine(model, device)
