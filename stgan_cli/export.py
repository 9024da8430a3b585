"""Exporting a model: a Hub-ready folder, ONNX, or a ``torch.export`` program, each checked after writing.

The ONNX and pt2 exports contain the whole low-resolution predictor::

    inputs   background (B, 3, H, W) in [0, 1], foreground canvas (B, 4, H, W) premultiplied RGBA,
             initial parameters (B, 8)
    outputs  params (B, N + 1, 8): p after 0..N generators;
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

from . import geometry, modelstore
from .errors import StganError

TOLERANCE = 1e-4  # max abs difference of the parameters allowed between an export and PyTorch


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
}

CARD_HEADER = "---\nlibrary_name: stgan\ntags: [image-compositing, st-gan, spatial-transformer]\nlicense: mit\n---\n"


def expm_series(a: torch.Tensor, squarings: int = 6, terms: int = 10) -> torch.Tensor:
    """``expm`` of ``(..., 3, 3)`` by a fixed scaling and squaring of a Taylor series: only matmuls,
    so it exports to any runtime.  Matches ``matrix_exp`` to ~1e-7 for norms up to a few units."""
    a = a / (2 ** squarings)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(a)
    out, term = eye, eye
    for k in range(1, terms + 1):
        term = term @ a / k
        out = out + term
    for _ in range(squarings):
        out = out @ out
    return out


class Predictor(nn.Module):
    """The generators run one after another, as one exportable module."""

    def __init__(self, net):
        super().__init__()
        self.generators = net.generators

    def forward(self, bg: torch.Tensor, fg: torch.Tensor, p0: torch.Tensor):
        p, params = p0, [p0]
        for gen in self.generators:
            warped = geometry.warp_image(fg, expm_series(geometry.sl3_matrix(p)))
            p = p + gen(bg, warped)
            params.append(p)
        return torch.stack(params, 1), expm_series(geometry.sl3_matrix(p))


def reference(net, bg, fg, p0):
    """The PyTorch model's answer (exact matrix exponential) in the exports' output layout."""
    with torch.no_grad():
        pred = net(bg, fg, p0)
    params = torch.stack(pred.params, 1)
    return params, geometry.warp_matrix(params[:, -1])


def example_inputs(size, batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    bg = torch.rand(batch, 3, h, w, generator=gen)
    alpha = (torch.rand(batch, 1, h, w, generator=gen) > 0.6).float()
    fg = torch.cat([torch.rand(batch, 3, h, w, generator=gen) * alpha, alpha], 1)
    p0 = torch.randn(batch, 8, generator=gen) * 0.1
    return bg, fg, p0


def check(name: str, got, expected, path: Path) -> float:
    diff = max((torch.as_tensor(g) - e).abs().max().item() for g, e in zip(got, expected))
    if not diff <= TOLERANCE:
        raise StganError(f"{path}: the {name} export differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}); "
                         "it was not kept")
    return diff


def _missing(modules) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def _atomic(out: Path, write) -> None:
    """Write a file through a temporary name in the same folder, then rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # same suffix as the target: torch.export.load insists on ".pt2"
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".partial-", suffix=out.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export(model_ref: str, fmt: str, out: Path, offline: bool = False) -> dict:
    """Export ``model_ref`` as ``fmt`` to ``out``; returns what was checked."""
    if fmt not in FORMATS:
        from .errors import UsageError, suggest

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
        return export_onnx(model, out)
    return export_pt2(model, out)


def export_package(folder: Path, out: Path) -> dict:
    """A copy of the model folder with a card that carries the Hub metadata header; reloaded to check."""
    if out.exists() and any(out.iterdir()):
        raise StganError(f"{out}: exists and is not empty")
    tmp = Path(tempfile.mkdtemp(dir=out.parent if out.parent.exists() else None, prefix=f".{out.name}."))
    try:
        for name in (modelstore.CONFIG_FILE, modelstore.WEIGHTS_FILE):
            shutil.copy2(folder / name, tmp / name)
        card_path = folder / modelstore.CARD_FILE
        card = card_path.read_text(encoding="utf-8") if card_path.exists() else f"# {folder.name}\n"
        if not card.startswith("---\n"):
            card = CARD_HEADER + "\n" + card
        (tmp / modelstore.CARD_FILE).write_text(card, encoding="utf-8")
        original, copy = modelstore.load(str(folder)), modelstore.load(str(tmp))
        inputs = example_inputs(original.config.image_size)
        diff = check("package", reference(copy.net, *inputs), reference(original.net, *inputs), out)
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return {"format": "package", "path": str(out), "max_abs_diff": diff}


def export_onnx(model, out: Path, opset: int = 18) -> dict:
    import onnxruntime as ort

    net = model.net.float().eval()
    pred = Predictor(net).eval()
    inputs = example_inputs(model.config.image_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    dynamic = {"bg": {0: batch}, "fg": {0: batch}, "p0": {0: batch}}

    def write(path: Path):
        import logging
        import warnings

        quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
        levels = [q.level for q in quiet]
        for q in quiet:  # the exporter reports, among others, that torchvision is not installed
            q.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # weights inside the file: an external .data file would be named after the temporary file
                torch.onnx.export(pred, inputs, str(path), input_names=["bg", "fg", "p0"],
                                  output_names=["params", "warp"], opset_version=opset, dynamo=True,
                                  dynamic_shapes=dynamic, external_data=False, verbose=False)
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        other = example_inputs(model.config.image_size, batch=5, seed=1)  # another batch size too
        for sample in (inputs, other):
            got = session.run(None, {k: v.numpy() for k, v in zip(("bg", "fg", "p0"), sample)})
            result["max_abs_diff"] = max(result.get("max_abs_diff", 0.0),
                                         check("onnx", got, reference(net, *sample), out))

    result: dict = {"format": "onnx", "path": str(out), "opset": opset}
    _atomic(out, write)
    return result


def export_pt2(model, out: Path) -> dict:
    net = model.net.float().eval()
    pred = Predictor(net).eval()
    inputs = example_inputs(model.config.image_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(pred, inputs, dynamic_shapes={"bg": {0: batch}, "fg": {0: batch}, "p0": {0: batch}})
    result: dict = {"format": "pt2", "path": str(out)}

    def write(path: Path):
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()
        for sample in (inputs, example_inputs(model.config.image_size, batch=5, seed=1)):
            with torch.no_grad():
                got = loaded(*sample)
            result["max_abs_diff"] = max(result.get("max_abs_diff", 0.0),
                                         check("pt2", got, reference(net, *sample), out))

    _atomic(out, write)
    return result
