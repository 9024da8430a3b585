"""A PNG encoder that deflates on several threads.

PNG's image data is one zlib stream, but a stream may be built from pieces that each end on a
full flush (independent deflate blocks), as pigz does; zlib releases the GIL while it works, so the
pieces compress in parallel.  Rows use the SUB filter and deflate is Huffman-only: on photographs
that is about the size of libpng's defaults at a fraction of the time.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PIECE_ROWS_BYTES = 2 << 20  # aim for ~2 MB of filtered rows per piece
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _filtered_rows(pixels: np.ndarray) -> np.ndarray:
    """Rows of big-endian samples, each prefixed by filter type 1 (SUB)."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.dtype == np.uint16:
        raw = pixels.astype(">u2").view(np.uint8).reshape(h, -1)
        bpp = 2 * channels
    else:
        raw = np.ascontiguousarray(pixels).reshape(h, -1)
        bpp = channels
    out = np.empty((h, raw.shape[1] + 1), np.uint8)
    out[:, 0] = 1
    out[:, 1:bpp + 1] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=out[:, bpp + 1:])  # wraps modulo 256, as SUB wants
    return out


def _deflate(piece: memoryview, last: bool) -> bytes:
    comp = zlib.compressobj(1, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)
    return comp.compress(piece) + comp.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


def encode_png(pixels: np.ndarray, icc: bytes | None = None, threads: int = 2) -> bytes:
    """PNG bytes of ``pixels``: ``(H, W)`` or ``(H, W, C)`` with C in 1..4 (RGB order), uint8 or uint16."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG holds uint8 or uint16 samples, not {pixels.dtype}")
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = _filtered_rows(pixels)
    data = memoryview(rows.reshape(-1))
    row_bytes = rows.shape[1]
    step = max(1, PIECE_ROWS_BYTES // row_bytes) * row_bytes
    starts = list(range(0, len(data), step))
    pieces = [(data[s:s + step], s + step >= len(data)) for s in starts]
    if threads > 1 and len(pieces) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            deflated = list(pool.map(lambda p: _deflate(*p), pieces))
    else:
        deflated = [_deflate(*p) for p in pieces]
    stream = b"\x78\x01" + b"".join(deflated) + struct.pack(">I", zlib.adler32(data))
    depth = 16 if pixels.dtype == np.uint16 else 8
    out = [b"\x89PNG\r\n\x1a\n",
           _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, _COLOR_TYPE[channels], 0, 0, 0))]
    if icc:
        out.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    out += [_chunk(b"IDAT", stream), _chunk(b"IEND", b"")]
    return b"".join(out)
