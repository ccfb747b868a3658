"""Safe files: atomic writes (temporary file, fsync, rename, folder fsync), locks and digests.

``atomic_write_bytes`` never leaves a half-written file under the final name: the payload goes to
a temporary file in the same folder, is flushed to disk, given the usual permissions (``0o666``
minus the umask; ``mkstemp`` would leave ``0600``) and renamed over the target. When writing fails
(a full disk, a read-only folder, an interrupt) the temporary file is removed and a one-line
``StorageError`` names the file. Temporary files of a process that is killed by a signal its
handler can catch are removed by ``remove_temporaries`` (the pool workers call it on SIGTERM).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageError

_PENDING: set[str] = set()  # temporary files being written by this process
_PENDING_LOCK = threading.Lock()


def sha256_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    try:  # Linux >= 4.7: read without changing it (thread-safe)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename itself is atomic
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with _PENDING_LOCK:
            _PENDING.add(tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp_done, tmp = tmp, None
        with _PENDING_LOCK:
            _PENDING.discard(tmp_done)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
            with _PENDING_LOCK:
                _PENDING.discard(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def remove_temporaries() -> None:
    """Delete the temporary files this process is writing (called before a forced exit)."""
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    for tmp in pending:
        try:
            os.unlink(tmp)
        except OSError:
            pass


@contextmanager
def file_lock(path: str | os.PathLike):
    """Exclusive lock across processes (``flock`` on ``path``, created if needed)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as exc:
        raise StorageError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """``folder`` created if needed; a one-line ``StorageError`` when it is not a writable folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StorageError(f"{what} {folder} is not a writable folder: {exc.strerror or exc}") from None
    return folder
