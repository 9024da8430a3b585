"""What a model folder holds and of which kind it is: the file names every kind shares, the digest
that ties a graph to its weights, and the kinds that hold something other than generators
(``kind:`` in their ``config.yaml``): the placement critic and the harmonizer.  Reading a folder of
another kind is refused in one line.  The leaf of :mod:`stgan_cli.model`: it imports nothing of it."""

from __future__ import annotations

import hashlib
from pathlib import Path

CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, ONNX_FILE = "config.yaml", "model.safetensors", "README.md", "model.onnx"
DIGEST_KEY = "stgan.weights_sha256"  # a graph's metadata: the SHA-256 of the weights it was made from
CRITIC, HARMONIZER = "placement-critic", "harmonizer"
FRAME = (120, 160)  # the photo, stretched, as the generators, the critic and the harmonizer see it


def weights_digest(folder: Path) -> str:
    h = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_FILE, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_config(folder: Path, kind: str, what: str) -> dict:
    """``folder``'s ``config.yaml`` when its ``kind`` is ``kind``; else one line saying it is not ``what``."""
    from ..errors import StganError
    from ..files.yamlio import read_yaml

    data = read_yaml(Path(folder) / CONFIG_FILE)
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


def stamped_session(folder: Path, threads: int | None = None):
    """An onnxruntime session of ``folder``'s ``model.onnx``, refused in one line unless the graph is stamped
    with the SHA-256 of the folder's current weights.  The stamp is read through onnxruntime: importing
    the ``onnx`` package alone costs 0.6 s on 2 cores."""
    import onnxruntime as ort

    from ..errors import StganError

    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        raise StganError(f"{path}: no such file; make it with stgan export {folder} --format engine")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    if session.get_modelmeta().custom_metadata_map.get(DIGEST_KEY) != weights_digest(folder):
        raise StganError(f"{path}: was not made from this folder's model.safetensors; remake it with "
                         f"stgan export {folder} --format engine")
    return session
