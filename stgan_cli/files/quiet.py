"""C libraries that talk on the terminal: libjpeg ("Corrupt JPEG data: ..."), libpng ("libpng error:
..."), libtiff and OpenCV's own log ("[ERROR:0@0.2] global grfmt_tiff.cpp ...") write straight to file
descriptor 2, around Python.  Our own one-line errors and notes say what matters; these lines are
caught while the library runs and handed back to the caller, which words them for the user.
``STGAN_DEBUG=1`` lets them through as they are.

File descriptor 2 is shared by the whole process, so the capture holds :data:`LOCK`, which the
command line's ``log`` also takes: our lines are never swallowed, they wait for the capture to end."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

LOCK = threading.RLock()


class Said:
    """What a library wrote to stderr inside :func:`captured` (empty when nothing or when debugging)."""

    text = ""


@contextlib.contextmanager
def captured():
    said = Said()
    if os.environ.get("STGAN_DEBUG") == "1":
        yield said
        return
    with LOCK:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (a daemon): nothing to keep off the terminal
            yield said
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield said
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                said.text = sink.read(4096).decode("utf-8", "replace").strip()
