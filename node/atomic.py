"""The node's small files (records, tokens, keys): written so that a crash leaves either the old file or
the new one, never a torn one, and read with a bound on what is read."""

import errno
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write data to path through a temporary file in the same directory, fsync, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def read_at_most(path: Path, size: int, error: type[Exception], what: str = "") -> bytes | None:
    """Up to size bytes of path, None when there is no such file; `error` saying what could not be read
    (`what`, or just the path) when it cannot be read."""
    try:
        with path.open("rb") as stream:
            return stream.read(size)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _cannot_read(path, exc.strerror or str(exc), error, what) from None


def read_existing(path: Path, size: int, error: type[Exception], what: str = "") -> bytes:
    """read_at_most for a file that must be there: a missing file is an `error` too."""
    data = read_at_most(path, size, error, what)
    if data is None:
        raise _cannot_read(path, os.strerror(errno.ENOENT), error, what)
    return data


def _cannot_read(path: Path, reason: str, error: type[Exception], what: str) -> Exception:
    the = f" the {what}" if what else ""
    return error(f"{path}: cannot read{the}: {reason}")


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
