"""``stgan app``: a local page to place an object by hand and let the model finish the job.

A small HTTP server from the standard library and one hand-written page (``page.html``): the page
needs a canvas on which the object is dragged, scaled and rotated, which a form toolkit such as
Gradio does not offer, and the standard library adds no dependency and starts in milliseconds.

Everything the page asks for goes through the code of ``stgan composite``: an uploaded image is read
by :func:`stgan_cli.files.imageio.read_image` (same checks, same one-line errors), the hand placement is
written as the sidecar that ``--init`` reads, and :class:`stgan_cli.composite.pipeline.Compositor` makes the
composite, its per-iteration steps and its sidecar.  Files live in one temporary folder, removed
when the server stops.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ..files import imageio
from ..errors import StganError, unexpected

PAGE = Path(__file__).with_name("page.html")
from ..files.bundled import samples_dir

SAMPLES = samples_dir()
MAX_UPLOAD_BYTES = 64 * 2**20
_ID = re.compile(r"^[0-9a-f]{32}$")
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".json": "application/json",
          ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp"}


class Session:
    """The model, the options every composite shares, and the temporary folder of uploads and results."""

    def __init__(self, model, max_pixels: int, device: str = "cpu"):
        self.model, self.max_pixels, self.device = model, max_pixels, device
        self.folder = Path(tempfile.mkdtemp(prefix="stgan-app-"))
        self.lock = threading.Lock()  # one composite at a time: the model is shared

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- uploads ------------------------------------------------------------------------------

    def upload(self, name: str, data: bytes) -> dict:
        """Store an uploaded image and check it as ``stgan composite`` would; returns its id and size."""
        suffix = Path(name).suffix.lower()
        if suffix not in imageio.IMAGE_SUFFIXES:
            raise StganError(f"{name}: not an image file name (expected {', '.join(sorted(imageio.IMAGE_SUFFIXES))})")
        key = uuid.uuid4().hex
        path = self.folder / "uploads" / key / Path(name).name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        try:
            pic = imageio.read_image(path, self.max_pixels)
        except StganError as exc:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise StganError(str(exc).replace(str(path), name)) from None
        h, w = pic.size
        return {"id": key, "name": path.name, "width": w, "height": h, "alpha": pic.channels in (2, 4)}

    def uploaded(self, key) -> Path:
        if not isinstance(key, str) or not _ID.match(key):
            raise StganError(f"{key!r}: no such upload")
        files = list((self.folder / "uploads" / key).glob("*"))
        if not files:
            raise StganError(f"{key}: no such upload")
        return files[0]

    def sample(self, name: str) -> Path:
        path = SAMPLES / Path(name).name
        if not path.is_file() or path.suffix.lower() not in imageio.IMAGE_SUFFIXES:
            raise StganError(f"{name}: no such sample")
        return path

    # --- compositing ------------------------------------------------------------------------------

    def composite(self, request: dict) -> dict:
        """Run the model from the page's placement (``homography``: foreground pixels to background
        pixels, or ``faces: true`` for glasses on every face) and return the result's files."""
        from ..composite.inputs import Item
        from ..composite.job import Options
        from ..composite.pipeline import Compositor

        _check_request(request, self.model.config.warps)
        fg = self._image(request, "fg")
        bg = self._image(request, "bg")
        mask = self._image(request, "mask") if request.get("mask") else None
        key = uuid.uuid4().hex
        out_dir = self.folder / "results" / key
        out_dir.mkdir(parents=True)
        out = out_dir / "result.png"
        opts = Options(iterations=request.get("iterations"), max_pixels=self.max_pixels, save_warp=True,
                       steps_dir=out_dir / "steps", trust_region=request.get("trust_region") or "default",
                       harmonize=bool(request.get("harmonize")))
        if request.get("faces"):
            opts.place = "face"
        elif request.get("auto"):  # no placement from the page: the critic chooses, its map comes back
            opts.place, opts.heatmap = "auto", True
        else:
            opts.place = "scene"
            opts.init = out_dir / "init.json"
            opts.init.write_text(json.dumps(_init_sidecar(request, fg, bg, self.max_pixels)))
        with self.lock:
            result = Compositor(self.model, opts).run([Item(fg, bg, out, mask)])[0]
        if result.status != "ok":
            raise StganError(_public(result.error or "failed", self.folder))
        steps = sorted((p for p in (out_dir / "steps").glob("result_step*.png") if re.fullmatch(r"result_step\d+", p.stem)),
                       key=lambda p: int(p.stem[len("result_step"):]))
        base = f"/results/{key}"
        return {"result": f"{base}/result.png", "sidecar": f"{base}/result.json",
                "steps": [f"{base}/steps/{p.name}" for p in steps], "clamped": result.clamped,
                "notes": [_public(n, self.folder) for n in result.notes], "placement": result.placement,
                "harmonize": result.harmonize,
                "heatmap": f"{base}/result_heatmap.png" if (out_dir / "result_heatmap.png").is_file() else None}

    def _image(self, request: dict, role: str) -> Path:
        entry = request.get(role)
        if isinstance(entry, dict) and "sample" in entry:
            return self.sample(str(entry["sample"]))
        if isinstance(entry, dict) and "upload" in entry:
            return self.uploaded(entry["upload"])
        raise StganError(f"no {role} image: upload one or pick a sample")

    def result_file(self, rel: str) -> Path:
        path = (self.folder / "results" / rel).resolve()
        if self.folder.resolve() not in path.parents or not path.is_file():
            raise StganError(f"{rel}: no such result")
        return path


def _check_request(request, warps: int) -> None:
    """A composite request's fields, each checked at the edge: a wrong one is a 400 naming it."""
    if not isinstance(request, dict):
        raise StganError(f"the request must be a JSON object, not {type(request).__name__}")
    k = request.get("iterations")
    if k is not None and not (isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= warps):
        raise StganError(f"iterations {json.dumps(k)[:40]}: expected a whole number from 0 to {warps} (the model's "
                         "generators), or null for the model's default")
    trust = request.get("trust_region")
    if trust is not None:
        if not isinstance(trust, str):
            raise StganError("trust_region: expected text (default, off, or move=0.3,scale=1.2,...)")
        from ..core.trust_region import Limits, parse

        parse(trust, Limits())
    if not isinstance(request.get("faces", False), bool):
        raise StganError("faces: expected true or false")
    for role in ("fg", "bg", "mask"):
        entry = request.get(role)
        if entry is not None and not (isinstance(entry, dict) and isinstance(entry.get("sample", entry.get("upload")), str)):
            raise StganError(f"{role}: expected {{\"upload\": ID}} or {{\"sample\": NAME}}")


def _init_sidecar(request: dict, fg: Path, bg: Path, max_pixels: int) -> dict:
    """The hand placement as the sidecar ``--init`` reads: the same placement gives the same output
    from the command line."""
    try:
        m = np.array(request["homography"], dtype=np.float64).reshape(3, 3)
    except (KeyError, TypeError, ValueError):
        raise StganError("the placement must be a 3x3 homography (foreground pixels to background pixels)") from None
    if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
        raise StganError("the placement is degenerate (the object has no area)")
    fh, fw = imageio.read_image(fg, max_pixels).size
    bh, bw = imageio.read_image(bg, max_pixels).size
    return {"homography": m.tolist(), "foreground_size": {"height": fh, "width": fw},
            "background_size": {"height": bh, "width": bw}}


def _public(message: str, folder: Path) -> str:
    """An error as the page shows it: without the temporary folder's paths."""
    message = re.sub(re.escape(str(folder)) + r"/(uploads|results)/[0-9a-f]{32}/", "", message)
    return message.replace("or --mask", "or add its mask")  # the page has a mask field, not flags


class Handler(BaseHTTPRequestHandler):
    session: Session  # set by serve()
    server_version = "stgan-app"
    # A client that announces more than it sends (or sends nothing) frees its thread after this long.
    timeout = 60

    def log_message(self, fmt, *args):  # quiet: the terminal shows the address, not every request
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: dict, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _file(self, path: Path, download: bool = False) -> None:
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", _TYPES.get(path.suffix.lower(), "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        if download:
            self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - the http.server API
        try:
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            if path == "/api/info":
                return self._json(_info(self.session))
            if path.startswith("/samples/"):
                return self._file(self.session.sample(path[len("/samples/"):]))
            if path.startswith("/results/"):
                return self._file(self.session.result_file(path[len("/results/"):]), "download" in self.path)
            self._json({"error": f"{path}: not found"}, HTTPStatus.NOT_FOUND)
        except StganError as exc:
            self._json({"error": str(exc)}, HTTPStatus.NOT_FOUND)

    def do_POST(self):  # noqa: N802
        try:
            length = _content_length(self.headers)
            body = self.rfile.read(length)
            if len(body) < length:
                raise StganError(f"the request ended after {len(body)} of the {length} bytes it announced")
            path = self.path.split("?", 1)[0]
            if path == "/api/upload":
                name = self.headers.get("X-File-Name") or "upload.png"
                return self._json(self.session.upload(name, body))
            if path == "/api/composite":
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    raise StganError("the request is not JSON") from None
                return self._json(self.session.composite(request))
            self._json({"error": f"{path}: not found"}, HTTPStatus.NOT_FOUND)
        except StganError as exc:
            self.close_connection = True  # the body may be unread: the connection cannot carry another request
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except Exception as exc:  # noqa: BLE001 - the page shows one line, the server keeps serving
            self._json({"error": unexpected(exc)}, HTTPStatus.INTERNAL_SERVER_ERROR)


def _content_length(headers) -> int:
    """The body's length from the headers, refused before a byte of it is read when it is missing
    with a body (chunked), not a whole number, negative, or over the upload limit."""
    if headers.get("Transfer-Encoding"):
        raise StganError("send the request with a Content-Length (chunked bodies are not read)")
    text = headers.get("Content-Length")
    if text is None:
        return 0
    if not text.strip().isdigit():
        raise StganError(f"Content-Length {text[:20]!r}: expected a whole number of bytes")
    length = int(text)
    if length > MAX_UPLOAD_BYTES:
        raise StganError(f"the upload is {length / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    return length


def _info(session: Session) -> dict:
    cfg = session.model.config
    samples = sorted(p.name for p in SAMPLES.glob("*.png")) if SAMPLES.is_dir() else []
    return {"model": session.model.ref, "domain": cfg.domain, "warps": cfg.warps,
            "iterations": cfg.iterations, "placement": {"center": list(cfg.placement.center), "scale": cfg.placement.scale},
            "max_pixels": session.max_pixels, "max_upload_mb": MAX_UPLOAD_BYTES // 2**20,
            "samples": {"backgrounds": [s for s in samples if s.startswith("room")],
                        "objects": [s for s in samples if s.startswith("object")]}}


def make_server(session: Session, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"session": session})
    return ThreadingHTTPServer((host, port), handler)
