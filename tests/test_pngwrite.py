import io

import cv2
import numpy as np
import pytest
from PIL import Image

from stgan_cli import pngwrite


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 2), (37, 53, 3), (37, 53, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_roundtrip_is_exact_in_opencv_and_pillow(shape, dtype, monkeypatch):
    monkeypatch.setattr(pngwrite, "PIECE_ROWS_BYTES", 500)  # many pieces, joined by full flushes
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(0).integers(0, top + 1, shape).astype(dtype)
    data = pngwrite.encode_png(pixels)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if len(shape) == 3 and shape[2] == 2:  # OpenCV expands grey+alpha; check what Pillow reads
        back = np.asarray(Image.open(io.BytesIO(data)))
        assert dtype == np.uint16 or np.array_equal(back, pixels)
        return
    if back.ndim == 3:
        back = cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA if back.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    assert back.dtype == dtype and np.array_equal(back, pixels)
    if dtype == np.uint8:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)


def test_threads_do_not_change_the_bytes(monkeypatch):
    monkeypatch.setattr(pngwrite, "PIECE_ROWS_BYTES", 1000)
    pixels = np.random.default_rng(1).integers(0, 256, (120, 90, 3)).astype(np.uint8)
    assert pngwrite.encode_png(pixels, threads=1) == pngwrite.encode_png(pixels, threads=3)


def test_icc_chunk():
    data = pngwrite.encode_png(np.zeros((4, 4, 3), np.uint8), icc=b"fake profile")
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == b"fake profile"
