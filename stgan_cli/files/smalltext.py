"""Small settings files (warp sidecars, configs) read with the checks a user's path needs: a named
pipe would block the read for ever and a device such as ``/dev/zero`` never ends, so both are refused
before a byte is read, and a file far larger than such a file can be is refused by its size."""

from __future__ import annotations

import os
import stat

from ..errors import StganError

LIMIT = 16 << 20  # a sidecar is a few kB and a config a few hundred bytes


def read_text(path: str | os.PathLike, what: str, limit: int = LIMIT) -> str:
    """The UTF-8 text of ``path``; every way it can be unreadable is one :class:`StganError` naming
    the file and saying it is not a ``what``."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise StganError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StganError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise StganError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    st = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(st.st_mode):
        problem = f"{path}: is a folder, not a {what}"
    elif not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        problem = f"{path}: is {kind}, not a {what}"
    elif st.st_size > limit:
        problem = f"{path}: {st.st_size / 2**20:.0f} MB is far too large for a {what}"
    if problem:
        os.close(fd)
        raise StganError(problem)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise StganError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise StganError(f"{path}: not a text file (a {what} is text)") from None
