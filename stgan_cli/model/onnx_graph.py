"""Writing a PyTorch module as an ONNX graph: the exporter run quietly with dynamic axes, and the
weights' digest stamped into it.  The generators' export, the critic's and the harmonizer's share it."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .kinds import DIGEST_KEY, weights_digest


def trace(module: nn.Module, inputs, path: Path, input_names, output_names, opset: int,
                 dynamic: dict | None = None) -> None:
    """``torch.onnx.export`` (dynamo, dynamic batch unless ``dynamic`` says which axes of which
    inputs vary, weights inside the file), quietly."""
    import logging
    import warnings

    if dynamic is None:
        batch = torch.export.Dim("batch", min=1, max=1024)
        dynamic = {name: {0: batch} for name in input_names}
    else:
        dims = {}
        dynamic = {k: None if v is None else {axis: dims.setdefault(name, torch.export.Dim(name, min=1, max=100000))
                                              for axis, name in v.items()} for k, v in dynamic.items()}
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [q.level for q in quiet]
    for q in quiet:  # the exporter reports, among others, that torchvision is not installed
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # weights inside the file: an external .data file would be named after the temporary file
            torch.onnx.export(module, inputs, str(path), input_names=list(input_names),
                              output_names=list(output_names), opset_version=opset, dynamo=True,
                              dynamic_shapes=dynamic, external_data=False, verbose=False)
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def stamp_digest(path: Path, folder: Path) -> None:
    """Stamp the graph at ``path`` with the SHA-256 of ``folder``'s weights (what
    :func:`stgan_cli.model.kinds.stamped_session` checks)."""
    import onnx

    graph = onnx.load(str(path))
    graph.metadata_props.add(key=DIGEST_KEY, value=weights_digest(folder))
    onnx.save(graph, str(path))
