"""Exporting a model: a Hub-ready folder, ONNX, or a ``torch.export`` program, each checked after writing.

The ONNX and pt2 exports contain the whole low-resolution predictor::

    inputs   background (B, 3, H, W) in [0, 1], foreground canvas (B, 4, H, W) premultiplied RGBA,
             initial parameters (B, 8)
    outputs  params (B, N + 1, 8): p after 0..N generators (N: the model's default_iterations);
             warp (B, 3, 3): expm(A(p_N)), the canvas_from_bg map in canonical coordinates

ONNX has no matrix exponential, so the exported graphs compute it by scaling and squaring a Taylor
series (exact to float32 rounding for the warps ST-GAN predicts); the check compares them with the
PyTorch model, which uses ``torch.linalg.matrix_exp``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..files import atomic
from ..core import geometry
from . import modelstore, onnx_graph, parity
from ..core.geometry import expm_series
from ..errors import StganError

@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    contents: str
    needs: tuple[str, ...] = ()  # optional packages (the stgan-cli[export] extra)


FORMATS = {
    "package": Format("package", "", "model folder: config.yaml, model.safetensors (float16), README.md card "
                      "with Hub metadata"),
    "onnx": Format("onnx", ".onnx", "low-res predictor, opset 18, dynamic batch; checked with onnxruntime",
                   ("onnx", "onnxscript", "onnxruntime")),
    "pt2": Format("pt2", ".pt2", "torch.export program of the predictor (torch.export.load); checked"),
    "engine": Format("engine", ".onnx", "one update of the generators as ONNX, for `composite --engine onnx` "
                     "(default --out: the model folder's model.onnx); checked with onnxruntime",
                     ("onnx", "onnxscript", "onnxruntime")),
}


class Predictor(nn.Module):
    """The model's iterative loop (:func:`stgan_cli.model.nets.iterate`) for its first ``iterations``
    updates (the model's default), with the series exponential, as one exportable module: the
    generators only, no discriminator."""

    def __init__(self, net, iterations: int | None = None):
        super().__init__()
        self.generators, self.iterations = net.generators, iterations

    def forward(self, bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor, bg_detail: torch.Tensor | None = None,
                fg_detail: torch.Tensor | None = None):
        from . import nets

        detail = None if bg_detail is None else (bg_detail, fg_detail)
        pred = nets.iterate(self.generators, bg, fg, p0, self.iterations, expm=expm_series, detail=detail)
        return torch.stack(pred.params, 1), expm_series(geometry.sl3_matrix(pred.params[-1]))


class Step(nn.Module):
    """One update of the warp by generator ``index``: ``(bg, fg, p) -> dp``, what it asks for at the
    warp ``p``.  The loop around it, and the trust region between updates, run outside the graph
    (:mod:`stgan_cli.model.onnx_engine`), so that an update can be shortened as in PyTorch."""

    def __init__(self, net, index: int = 0):
        super().__init__()
        self.generators, self.index = net.generators, index

    def forward(self, bg: torch.Tensor, fg: torch.Tensor, p: torch.Tensor, bg_detail: torch.Tensor | None = None,
                fg_detail: torch.Tensor | None = None):
        warped = geometry.warp_image(fg, expm_series(geometry.sl3_matrix(p)))
        detail = None if bg_detail is None else (bg_detail, fg_detail)
        return self.generators.update(self.index, bg, fg, warped, p, expm_series, detail)


def distinct_updates(generators) -> int:
    """How many different update networks ``generators`` hold: one per iteration, or one shared."""
    return generators.iterations if getattr(generators, "sequential_stages", True) else 1


def input_names(config, first=("bg", "fg", "p0")) -> tuple[str, ...]:
    """The graph inputs of an export of a model with ``config``."""
    return tuple(first) + (("bg_detail", "fg_detail") if config.detail else ())


def _missing(modules) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(f"{folder}: cannot create the output folder ({atomic.describe(exc)})") from None


def _atomic(out: Path, write) -> None:
    """Write a file through a temporary name in the same folder (ending like the target:
    ``torch.export.load`` insists on ".pt2"), then rename."""
    _mkdir(out.parent)
    with atomic.replacing(out, keep_suffix=True) as tmp:
        write(tmp)


def export(model_ref: str, fmt: str, out: Path, offline: bool = False, say=None) -> dict:
    """Export ``model_ref`` as ``fmt`` to ``out``; returns what was checked.  ``say(line)`` hears of
    each long step as it starts (tracing a graph takes minutes on a small CPU)."""
    say = say or (lambda line: None)
    if fmt not in FORMATS:
        from ..errors import UsageError, suggest

        raise UsageError(f"--format {fmt}: unknown{suggest(fmt, FORMATS)}; formats: {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    missing = _missing(spec.needs)
    if missing:
        raise StganError(f"--format {fmt} needs {', '.join(missing)}: pip install 'stgan-cli[export]'")
    folder = modelstore.resolve(model_ref, offline=offline)
    if fmt == "package":
        return export_package(folder, out)
    model = modelstore.load(str(folder))
    if fmt == "onnx":
        say(f"tracing {model.ref}'s {model.config.iterations} iterations into one ONNX graph, then checking it "
            "against PyTorch (minutes on 2 cores)")
        return export_onnx(model, out)
    if fmt == "engine":
        return export_engine(model, out, say=say)
    say(f"tracing {model.ref} with torch.export, then checking it against PyTorch")
    return export_pt2(model, out)


def export_package(folder: Path, out: Path) -> dict:
    """A copy of the model folder with a card that carries the Hub metadata header; reloaded to check it."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StganError(f"{out}: exists and is not empty")
    _mkdir(out.parent)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=atomic.PART))
    except OSError as exc:
        raise StganError(f"{out.parent}: cannot write there ({atomic.describe(exc)})") from None
    try:
        for name in (modelstore.CONFIG_FILE, modelstore.WEIGHTS_FILE):
            shutil.copyfile(folder / name, tmp / name)
        card_path = folder / modelstore.CARD_FILE
        card = card_path.read_text(encoding="utf-8") if card_path.exists() else f"# {folder.name}\n"
        if not card.startswith("---\n"):
            card = modelstore.CARD_HEADER + "\n" + card
        (tmp / modelstore.CARD_FILE).write_text(card, encoding="utf-8")
        original, copy = modelstore.load(str(folder)), modelstore.load(str(tmp))
        inputs = parity.example_inputs(original.config.image_size)
        diff = parity.check("package", parity.reference(copy.net, *inputs), parity.reference(original.net, *inputs), inputs,
                     original.config.image_size, out)
        for f in tmp.iterdir():
            atomic.make_public(f)
        atomic.make_public(tmp, folder=True)  # mkdtemp's 0700 would hide the package from other users
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        raise StganError(f"{out}: cannot write the package ({atomic.describe(exc)})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {"format": "package", "path": str(out), "max_corner_px": diff}


def export_onnx(model, out: Path, opset: int = 18) -> dict:
    import onnxruntime as ort

    net = model.net.float().eval()
    k = model.config.iterations
    pred = Predictor(net, k).eval()
    inputs = parity.example_inputs(model.config.image_size, detail=model.config.detail)
    names = input_names(model.config)

    def write(path: Path):
        onnx_graph.trace(pred, inputs, path, names, ("params", "warp"), opset)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        other = parity.example_inputs(model.config.image_size, batch=5, seed=1, detail=model.config.detail)  # another batch size too
        for sample in (inputs, other):
            got = session.run(None, {k: v.numpy() for k, v in zip(names, sample)})
            result["max_corner_px"] = max(result.get("max_corner_px", 0.0), parity.check(
                "onnx", got, parity.reference(net, *sample, iterations=k), sample, model.config.image_size, out))

    result: dict = {"format": "onnx", "path": str(out), "opset": opset}
    _atomic(out, write)
    return result


def export_engine(model, out: Path | None = None, opset: int = 18, say=None) -> dict:
    """The model's updates as ONNX, one graph per distinct generator (onnxruntime runs every node of
    a graph, so generators sharing one graph would all run at every step): ``model.onnx`` in its
    folder unless ``out`` says otherwise, then ``model.step2.onnx``.. beside it for per-iteration
    generators.  Each is stamped with what it was made from; then :mod:`stgan_cli.model.onnx_engine` runs
    the whole loop (every generator, with and without the model's trust region) and is checked
    against PyTorch's.  A failed check keeps none of the files."""
    import onnx

    from . import onnx_engine

    out = Path(out) if out is not None else model.path / onnx_engine.ENGINE_FILE
    net = model.net.float().eval()
    count = distinct_updates(net.generators)
    paths = [onnx_engine.step_path(out, i) for i in range(count)]
    inputs = parity.example_inputs(model.config.image_size, detail=model.config.detail)
    result: dict = {"format": "engine", "path": str(out), "opset": opset, "graphs": len(paths)}
    marks = onnx_engine.stamp(model.path, model.config)
    written = []
    say = say or (lambda line: None)
    try:
        for i, path in enumerate(paths):
            say(f"graph {i + 1} of {count}: tracing generator {i + 1} into {path.name}")

            def write(tmp: Path, i=i):
                onnx_graph.trace(Step(net, i).eval(), inputs, tmp, input_names(model.config, ("bg", "fg", "p")), ("dp",), opset)
                graph = onnx.load(str(tmp))
                for key, value in {**marks, "stgan.step": str(i + 1), "stgan.steps": str(count)}.items():
                    graph.metadata_props.add(key=key, value=value)
                onnx.save(graph, str(tmp))

            _atomic(path, write)
            written.append(path)
        say(f"checking the {count} graph{'s' if count > 1 else ''} against PyTorch's loop, with and without the "
            "trust region")
        engine = onnx_engine.OnnxEngine(out, model.path, model.config)
        limits = model.trust_limits()
        for sample in (inputs, parity.example_inputs(model.config.image_size, batch=5, seed=1, detail=model.config.detail)):
            detail = tuple(t.numpy() for t in sample[3:]) or None
            for trust in (None, limits):
                got = engine.predict(sample[0].numpy(), sample[1].numpy(), model.config.warps, trust, sample[2].numpy(),
                                     detail)
                expected = parity.reference(net, *sample, iterations=model.config.warps, limits=trust)
                result["max_corner_px"] = max(result.get("max_corner_px", 0.0), parity.check(
                    "engine", (got.params, expm_series(geometry.sl3_matrix(torch.from_numpy(got.params[:, -1])))),
                    expected, sample, model.config.image_size, out))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return result


def export_pt2(model, out: Path) -> dict:
    net = model.net.float().eval()
    k = model.config.iterations
    pred = Predictor(net, k).eval()
    inputs = parity.example_inputs(model.config.image_size, detail=model.config.detail)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(pred, inputs, dynamic_shapes={name: {0: batch} for name in input_names(model.config)})
    result: dict = {"format": "pt2", "path": str(out)}

    def write(path: Path):
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()
        for sample in (inputs, parity.example_inputs(model.config.image_size, batch=5, seed=1, detail=model.config.detail)):
            with torch.no_grad():
                got = loaded(*sample)
            result["max_corner_px"] = max(result.get("max_corner_px", 0.0), parity.check(
                "pt2", got, parity.reference(net, *sample, iterations=k), sample, model.config.image_size, out))

    _atomic(out, write)
    return result
