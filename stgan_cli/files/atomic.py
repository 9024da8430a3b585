"""Files that land whole or not at all.

Every output of the project (images, sidecars, model files, exports, checkpoints, metrics) is written
to a hidden temporary name in its own folder, flushed to disk, given the permissions a normal file
gets, and renamed over the target.  A crash, a kill or a full disk leaves the previous file (or
nothing), never half a file.  Temporary names carry the writer's process id, so a later run can tell
the left-overs of a killed process from a file another live run is still writing.

No torch, no OpenCV: the command line's cheap paths use this too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from ..errors import StganError

PART = ".part"


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path: str | os.PathLike, folder: bool = False) -> None:
    """The mode an ordinary ``open``/``mkdir`` would give (``mkstemp``/``mkdtemp`` give 0600/0700,
    which hides outputs from the other users of a shared machine)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


# ".<target>.<pid>.<mkstemp's 8 characters>.part[.<target suffix>]"
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]{8}\.part(\.[^.]+)?$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(folder: str | os.PathLike) -> int:
    """Remove the temporary files that killed writers left in ``folder``; returns how many.

    A temporary file of a process that is still running (another batch writing into the same
    folder) is left alone."""
    removed = 0
    try:
        entries = list(Path(folder).glob(f".*{PART}*"))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or int(match["pid"]) == os.getpid() or _pid_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed += 1
    return removed


def describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied" if exc.errno != errno.EROFS else "read-only file system"
    return exc.strerror or type(exc).__name__


def _exists_error(path: Path) -> StganError:
    return StganError(f"{path}: already exists (written by another run meanwhile); use --overwrite to replace it")


def _commit(tmp: str, path: Path, exclusive: bool) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    make_public(tmp)
    if not exclusive:
        os.replace(tmp, path)
        return
    try:  # a hard link fails if the target exists: an atomic "create only"
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # file systems without hard links: the best check there is
        if path.exists():
            raise _exists_error(path) from None
        os.replace(tmp, path)


def _temporary(path: Path, suffix: str) -> tuple[int, str]:
    """An open temporary file beside ``path``, named for the writer (see :func:`clean_stale`)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        return tempfile.mkstemp(dir=folder, prefix=_prefix(path), suffix=suffix)
    except FileNotFoundError:
        raise StganError(f"{folder}: the output folder does not exist") from None
    except OSError as exc:
        raise StganError(f"{folder}: cannot write there ({describe(exc)})") from None


@contextlib.contextmanager
def replacing(path: str | os.PathLike, keep_suffix: bool = False, exclusive: bool = False):
    """Yield a temporary path next to ``path``; when the block ends without an exception the file
    is synced, made public and renamed to ``path``.

    ``keep_suffix`` ends the temporary name with the target's own suffix (``torch.export.save``
    insists on ".pt2").  ``exclusive`` refuses to replace a file that appeared meanwhile, checked at
    the moment the file lands, so two concurrent runs never overwrite each other's outputs.
    OS errors become a :class:`StganError` naming ``path``."""
    path = Path(path)
    fd, tmp = _temporary(path, (PART + path.suffix) if keep_suffix else PART)
    os.close(fd)
    try:
        yield Path(tmp)
        _commit(tmp, path, exclusive)
    except OSError as exc:
        raise StganError(f"{path}: cannot write ({describe(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class Together:
    """Files that land together or not at all: a composite with its mask, sidecar and steps.

    Each :meth:`write_bytes` goes to a temporary name beside its target; when the ``with`` block ends
    without an exception every file is renamed into place, in the order written, after a check that
    no target has become a folder or special file (which would stop the renames half way).  A failure
    anywhere before that leaves every previous file as it was and no temporary file behind."""

    def __init__(self):
        self._staged: list[tuple[str, Path, bool]] = []

    def write_bytes(self, path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
        path = Path(path)
        fd, tmp = _temporary(path, PART)
        self._staged.append((tmp, path, exclusive))
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise StganError(f"{path}: cannot write ({describe(exc)})") from None

    def __enter__(self) -> "Together":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                for _, path, _ in self._staged:
                    check_target(path)
                landed: list[Path] = []
                for tmp, path, exclusive in self._staged:
                    try:
                        _commit(tmp, path, exclusive)
                    except BaseException as err:
                        for new in landed:  # files that did not exist before this group: take them back
                            with contextlib.suppress(OSError):
                                new.unlink()
                        if isinstance(err, OSError):
                            raise StganError(f"{path}: cannot write ({describe(err)})") from None
                        raise
                    if exclusive:
                        landed.append(path)
        finally:
            for tmp, _, _ in self._staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def check_target(path: str | os.PathLike) -> None:
    """Refuse an output path that names a folder, a pipe or a device: renaming onto it would fail
    after the other outputs had landed, and writing to it would hang or go nowhere."""
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise StganError(f"{path}: is a folder; an output file cannot replace it")
    if not stat.S_ISREG(st.st_mode):
        raise StganError(f"{path}: is a pipe, device or socket; an output must be a plain file")


def write_bytes(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`replacing`)."""
    with replacing(path, exclusive=exclusive) as tmp:
        tmp.write_bytes(data)
