import io

import cv2
import numpy as np
import pytest
from PIL import Image

from stgan_cli.files import pngwrite


def decode_png(data: bytes) -> np.ndarray:
    """A plain PNG reader (non-interlaced, any of the five row filters), for what the libraries at
    hand do not read exactly: 16-bit grey+alpha."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert interlace == 0
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    bpp = channels * depth // 8
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
    return np.frombuffer(b"".join(rows), dtype).reshape(h, w, channels).astype(dtype.newbyteorder("="))


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 2), (37, 53, 3), (37, 53, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_roundtrip_is_exact_in_opencv_and_pillow(shape, dtype, monkeypatch):
    monkeypatch.setattr(pngwrite, "PIECE_ROWS_BYTES", 500)  # many pieces, joined by full flushes
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(0).integers(0, top + 1, shape).astype(dtype)
    data = pngwrite.encode_png(pixels)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if len(shape) == 3 and shape[2] == 2:  # OpenCV expands grey+alpha and Pillow narrows it to 8 bits
        assert np.array_equal(decode_png(data), pixels)
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
