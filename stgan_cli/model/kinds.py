"""Model folders that hold something other than generators (``kind:`` in their ``config.yaml``): the
placement critic and the harmonizer.  Reading a folder of another kind is refused in one line."""

from __future__ import annotations

from pathlib import Path


def read_config(folder: Path, kind: str, what: str) -> dict:
    """``folder``'s ``config.yaml`` when its ``kind`` is ``kind``; else one line saying it is not ``what``."""
    from ..errors import StganError
    from ..files.yamlio import read_yaml

    data = read_yaml(Path(folder) / "config.yaml")
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise StganError(f"{folder}: not {what} (its config.yaml has no kind: {kind})")
    return data


def is_kind(folder: Path, kind: str) -> bool:
    from ..errors import StganError

    try:
        read_config(folder, kind, kind)
    except StganError:
        return False
    return True


def stamped_session(folder: Path, onnx_file: str, digest_key: str, threads: int | None = None):
    """An onnxruntime session of ``folder/onnx_file``, refused in one line unless the graph is stamped
    with the SHA-256 of the folder's current weights.  The stamp is read through onnxruntime: importing
    the ``onnx`` package alone costs 0.6 s on 2 cores."""
    import onnxruntime as ort

    from ..errors import StganError
    from .onnx_engine import weights_digest

    path = Path(folder) / onnx_file
    if not path.is_file():
        raise StganError(f"{path}: no such file; make it with stgan export {folder} --format engine")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    if session.get_modelmeta().custom_metadata_map.get(digest_key) != weights_digest(folder):
        raise StganError(f"{path}: was not made from this folder's model.safetensors; remake it with "
                         f"stgan export {folder} --format engine")
    return session
