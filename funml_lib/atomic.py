"""Writing a file so that a crash, a full disk or a kill never leaves it half-written.

`atomic_write(path, write)` lets `write` fill a temporary file in the same folder, flushes and
fsyncs it, optionally checks it, and renames it over `path` (`os.replace`: atomic on one file
system; a symbolic link at `path` is replaced itself, never written through). An existing file keeps
its permissions, and one that open() could not write (read-only) is refused with a PermissionError
naming it. On any failure the
temporary file is deleted and `path` keeps its old content. Temporary files are named
`.<name>.<pid>.<random>.tmp`, so one left by a process that was killed (no cleanup can run then)
is recognised and removed by the next write to the same path.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

TMP_SUFFIX = ".tmp"


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of `path` whose writing process no longer exists (POSIX only)."""
    if os.name != "posix":  # os.kill(pid, 0) tests for a process only on POSIX
        return
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split(".")[0]
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX) and pid.isdigit()
                and int(pid) > 0 and int(pid) != os.getpid()):
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # the write that made it was killed
            (path.parent / name).unlink(missing_ok=True)
        except OSError:  # alive, under another user: not ours to delete
            pass


def _file_mode(path: Path) -> int:
    if path.is_file() and not path.is_symlink():
        return path.stat().st_mode & 0o777  # an overwrite keeps the file's permissions
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask  # what open() would have given a new file


def _check_writable(path: Path) -> None:
    """Refuse to replace an existing file that open(path, "w") would refuse (e.g. one made read-only).

    A rename needs only the folder's permission, so without this check a file its owner protected with
    chmod a-w would be replaced without a word, losing what it held.
    """
    if path.is_file() and not path.is_symlink() and not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, f"{path} is read-only, so it is not replaced (as open() would "
                              "refuse to write it); make it writable or choose another file", str(path))


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where folders cannot be opened; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None],
                 check: Callable[[str], None] | None = None) -> Path:
    """Write `path` through `write(binary_file)`, all or nothing; return the path.

    check: called with the temporary file's name after it is synced; raising refuses the write.
    Parent folders are created. Errors propagate (callers decide whether a failed write matters).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_writable(path)
    remove_stale_temporaries(path)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=TMP_SUFFIX)  # O_EXCL: never follows a planted link
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave a temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write` for UTF-8 text."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))
