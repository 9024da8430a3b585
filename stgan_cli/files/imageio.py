"""Reading and writing images the way users' files actually are.

Arrays are ``(H, W)`` or ``(H, W, C)`` in RGB / RGBA channel order, ``uint8`` or ``uint16`` as
stored.  The format is detected from the bytes, never from the extension; EXIF orientation is
applied; the ICC profile is carried to PNG and JPEG outputs; outputs are written to a temporary file
and renamed, so a failure never leaves half an image behind.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import StganError

DEFAULT_MAX_PIXELS = 100_000_000
MIN_SIDE = 8
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}  # what a folder's listing picks
WRITE_FORMATS = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".webp": ".webp", ".tif": ".tiff",
                 ".tiff": ".tiff", ".bmp": ".bmp"}

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
]


def list_images(folder: Path, passed_over: list[str] | None = None) -> list[Path]:
    """The image files of ``folder`` by suffix, sorted; hidden files (a write in progress) left out.
    Entries with an image's name that are no file (a named pipe, a device, a link to nothing) are
    left out too, each said in ``passed_over`` when given."""
    files = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
            continue
        if p.is_file():
            files.append(p)
        elif passed_over is not None and not p.is_dir():
            passed_over.append(passed_over_line(p))
    return files


def passed_over_line(p: Path) -> str:
    """What a batch says of an entry named like an image that is no file it can read."""
    what = "a link to nothing" if p.is_symlink() and not p.exists() else \
        "a named pipe" if p.is_fifo() else "not a regular file"
    return f"{p}: {what}; skipped"


@dataclass
class Picture:
    pixels: np.ndarray
    icc: bytes | None
    format: str
    path: str
    damage: str | None = None  # what the decoder reported when it recovered from damaged data

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.pixels.shape[:2]

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else self.pixels.shape[2]


def sniff(data: bytes) -> str | None:
    """Image format named by the file's first bytes, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _check_complete(data: bytes, fmt: str, path: str) -> None:
    # Decoders return a grey-filled picture for a cut-off file instead of failing: check the end.
    if fmt == "PNG" and b"IEND" not in data[-64:]:
        raise StganError(f"{path}: truncated PNG (no IEND chunk at the end)")
    end = data.rfind(b"\xff\xd9")
    if fmt == "JPEG" and (end < 0 or end < len(data) - 4096):
        raise StganError(f"{path}: truncated JPEG (no end-of-image marker)")


_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1),
}


def _header(head: bytes, path: str, fh=None):
    """(width, height, EXIF orientation, ICC profile) from the header alone, without decoding.

    ``head`` is the file's beginning; when the header runs past it (a JPEG whose metadata is larger),
    the rest is read from the open file ``fh``."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the limit is ours (max_pixels), checked before decoding
    for source in (io.BytesIO(head), fh):
        if source is None:
            break
        try:
            source.seek(0)
            with Image.open(source) as im:
                if im.format == "PNG":
                    # PngImageFile.getexif() decodes the whole image to look for a trailing eXIf chunk;
                    # the header's chunks are enough.
                    exif = Image.Exif()
                    if "exif" in im.info:
                        exif.load(im.info["exif"])
                else:
                    exif = im.getexif()
                return im.size[0], im.size[1], exif.get(0x0112, 1), im.info.get("icc_profile")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
            error = exc
    raise StganError(f"{path}: corrupt or unreadable image header ({error})") from None


HEAD_BYTES = 1 << 20  # enough for any header PIL needs (EXIF and ICC included) in practice
BYTES_PER_PIXEL_LIMIT = 16  # 16-bit RGBA is 8 bytes a pixel uncompressed: a file far beyond is not that image
METADATA_ALLOWANCE = 64 << 20


def _open_regular(path: str | os.PathLike, name: str):
    """An open binary file for ``path`` and its size; FIFOs, devices and sockets are refused
    (reading one would block or never end)."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise StganError(f"{name}: is a folder, not an image")
        if not stat.S_ISREG(st.st_mode):
            kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
            raise StganError(f"{name}: is {kind}, not an image file")
        return open(path, "rb"), st.st_size
    except FileNotFoundError:
        raise StganError(f"{name}: no such file") from None
    except OSError as exc:
        raise StganError(f"{name}: cannot read ({exc.strerror})") from None


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file; raise :class:`StganError` naming the file on any problem.

    The header is read and checked (format, size against ``max_pixels``, file size against what
    such an image can need) before the rest of the file is read."""
    name = str(path)
    fh, size = _open_regular(path, name)
    with fh:
        try:
            head = fh.read(min(size, HEAD_BYTES))
            if not head:
                raise StganError(f"{name}: empty file (0 bytes)")
            fmt = sniff(head)
            if fmt is None:
                raise StganError(f"{name}: not an image (unrecognised content; PNG, JPEG, WebP, TIFF and BMP "
                                 "are read)")
            width, height, orientation, icc = _header(head, name, fh)
            if width * height > max_pixels:
                raise StganError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} MP, over the limit of "
                                 f"{max_pixels / 1e6:.0f} MP (raise it with --max-pixels)")
            if size > BYTES_PER_PIXEL_LIMIT * width * height + METADATA_ALLOWANCE:
                raise StganError(f"{name}: the file is {size / 1e6:.0f} MB, far more than a {width}x{height} "
                                 "image needs (corrupt, or something appended)")
            fh.seek(0)
            data = fh.read()
        except OSError as exc:
            raise StganError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    _check_complete(data, fmt, name)
    from . import quiet

    with quiet.captured() as said:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    complaint = _first_line(said.text)
    if pixels is None:
        raise StganError(f"{name}: corrupt {fmt} data (the decoder gave up{': ' + complaint if complaint else ''})")
    if pixels.dtype not in (np.uint8, np.uint16):
        scale = 65535.0 if pixels.dtype.kind == "f" else 1.0
        pixels = np.clip(pixels.astype(np.float64) * scale, 0, 65535).astype(np.uint16)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
        pixels = cv2.cvtColor(pixels, code)
    if orientation in _ORIENT:
        pixels = np.ascontiguousarray(_ORIENT[orientation](pixels))
    if min(pixels.shape[:2]) < MIN_SIDE:
        raise StganError(f"{name}: image is {pixels.shape[1]}x{pixels.shape[0]}, too small "
                         f"(at least {MIN_SIDE}x{MIN_SIDE} pixels)")
    pic = Picture(pixels, icc, fmt, name)
    if complaint:
        pic.damage = f"warning: {name}: damaged {fmt} data, decoded what could be read ({complaint})"
    return pic


def _first_line(text: str) -> str:
    """A decoder's complaint as one short line, without OpenCV's "[ERROR:0@0.2] global file.cpp:116"
    prefix."""
    import re

    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^\[\s*\w+:\d+@[\d.]+\]\s*global\s+\S+\s*", "", line)
    return line[:160]


def to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """``uint8``/``uint16`` array to float32 in [0, 1]."""
    return pixels.astype(np.float32) * (1.0 / (65535.0 if pixels.dtype == np.uint16 else 255.0))


JPEG_MASK_NOISE = 8 / 255


def mask_from_picture(pic: Picture) -> np.ndarray:
    """A mask file as float32 ``(H, W)`` in [0, 1]: grey, RGB (channel mean) or RGBA (its alpha).

    JPEG masks carry compression noise around edges and in flat areas; values within a few levels
    of 0 or 1 are snapped so the noise does not paint a faint ghost of the whole box.
    """
    px = to_unit_float(pic.pixels)
    if px.ndim == 2:
        mask = px
    elif px.shape[2] == 4 and px[..., 3].min() < 1.0:
        mask = np.ascontiguousarray(px[..., 3])
    else:
        mask = px[..., :3].mean(2)
    if pic.format == "JPEG":
        mask = np.where(mask < JPEG_MASK_NOISE, 0, np.where(mask > 1 - JPEG_MASK_NOISE, 1, mask)).astype(np.float32)
    return mask


# --- writing ----------------------------------------------------------------------------------

def _jpeg_with_icc(jpg: bytes, icc: bytes) -> bytes:
    size = 65519
    parts = [icc[i:i + size] for i in range(0, len(icc), size)]
    segs = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + 14 + len(part)) + b"ICC_PROFILE\x00" + bytes([i + 1, len(parts)]) + part
        for i, part in enumerate(parts))
    at = 2
    if jpg[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first, as the standard asks
        at = 4 + struct.unpack(">H", jpg[4:6])[0]
    return jpg[:at] + segs + jpg[at:]


def output_format(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in WRITE_FORMATS:
        from ..errors import UsageError

        raise UsageError(f"{path}: unknown output format '{ext or '(none)'}'; use one of "
                         f"{', '.join(sorted(set(WRITE_FORMATS)))}")
    return WRITE_FORMATS[ext]


def encode(pixels: np.ndarray, ext: str, icc: bytes | None = None, quality: int = 95) -> bytes:
    """Encode RGB(A)/grey ``pixels`` for ``ext`` (".png", ".jpg", ...), downgrading what the format
    cannot hold: JPEG and WebP get 8 bits and no alpha."""
    if ext in (".jpg", ".webp"):
        if pixels.dtype == np.uint16:
            pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
        if pixels.ndim == 3 and pixels.shape[2] == 4 and ext == ".jpg":
            pixels = pixels[..., :3]
    if ext == ".png":
        from .pngwrite import encode_png

        return encode_png(pixels, icc)
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), code)
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, quality], ".webp": [cv2.IMWRITE_WEBP_QUALITY, quality]}.get(ext, [])
    ok, buf = cv2.imencode(ext, pixels, params)
    if not ok:
        raise StganError(f"could not encode the image as {ext}")
    data = buf.tobytes()
    if icc and ext == ".jpg":
        data = _jpeg_with_icc(data, icc)
    return data


def write_image(path: str | os.PathLike, pixels: np.ndarray, icc: bytes | None = None,
                exclusive: bool = False) -> None:
    from . import atomic

    atomic.write_bytes(path, encode(pixels, output_format(path), icc), exclusive=exclusive)
