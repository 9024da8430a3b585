"""``stgan app``: the local page (stgan_cli/app)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import friendly_errors, log, resolve_device
from .options import DEFAULT_MAX_PIXELS, DeviceOpt, ModelOpt, OfflineOpt


@friendly_errors
def app(
    model: ModelOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).", min=0, max=65535)] = 7860,
    max_pixels: Annotated[int, typer.Option(
        "--max-pixels", help="Refuse uploads larger than this (decompression bombs).", min=1)] = DEFAULT_MAX_PIXELS,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
):
    """A local page: drop a background and an object, drag, scale and rotate it, press Correct and
    see each iteration of the model's correction; download the full-resolution result and its warp."""
    from ..model import modelstore
    from ..app.server import Session, make_server

    loaded = modelstore.open_model(model, offline).to(resolve_device(device))
    loaded.net  # noqa: B018 - load the weights now: a broken model fails here, not on the first click
    import signal

    def stop(signum, frame):  # kill, a closed terminal or a service manager: clean up as Ctrl+C does
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
    session = Session(loaded, max_pixels)
    server = None
    try:  # from here on any stop, wherever it lands, removes the session's folder
        try:
            server = make_server(session, host, port)
        except OSError as exc:
            from ..errors import StganError

            raise StganError(f"{host}:{port}: cannot listen ({exc.strerror})") from None
        if host not in ("127.0.0.1", "localhost", "::1"):
            log(f"listening on {host}: anyone who can reach this machine can use the page")
        log(f"stgan app with model {loaded.ref}: http://{host}:{server.server_address[1]}/  (Ctrl+C stops it)")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.server_close()
        session.close()
