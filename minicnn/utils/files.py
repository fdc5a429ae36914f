"""Files written so that nothing a user saved is lost or half-written, and read only when they are regular files.

``atomic_write(path)`` hands out a temporary file beside ``path``; when the
``with`` block ends it is flushed, fsynced, given the permissions a plain
``open()`` would (0666 less the umask) and renamed into place.  Readers see the
old file or the new one, never half of it; on any error, Ctrl-C included, the
temporary file is removed and the old file is intact.  A process killed mid-write
leaves ``.<name>.<random>.tmp``, which ``remove_stale_temporaries`` deletes.
``read_metrics`` reads a run's metrics.json, the one place that does.
"""
import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, before_replace=None):
    """``with atomic_write(path) as f: f.write(...)``: a binary file that replaces ``path`` only once complete.

    ``before_replace``: optional callable run once the file is complete and synced, right before the rename.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _naming(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode open() would
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(err, path):
    """The same OSError naming the file being written (a write or fsync that fails, e.g. ENOSPC, names none)."""
    if err.filename is not None or not err.errno:
        return err
    named = type(err)(err.errno, err.strerror or os.strerror(err.errno), str(path))
    return named


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` through ``atomic_write``."""
    with atomic_write(path) as f:
        f.write(data)


def remove_stale_temporaries(path):
    """Delete the temporary files that interrupted writes of ``path`` left beside it; returns their paths.

    Call this only when no other process is writing ``path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def check_regular_file(path, what="file"):
    """``os.stat`` ``path`` (following symlinks) and refuse anything but a regular file, without opening it.

    A FIFO would block ``open()`` and a device such as ``/dev/zero`` never ends,
    so both are refused here. Raises ``ValueError`` naming the file; a missing
    file raises ``FileNotFoundError``.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise ValueError(f"{path}: expected a regular {what}, got {kind}")
    return st


def read_metrics(path, hint="a run's metrics.json, or its folder"):
    """(path, dict) of a run's metrics.json; ``path`` is the file or the run's folder.  ValueError, with ``hint``, otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no such file: {path} (expected {hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a JSON file: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, not the JSON object of a run's metrics")
    return path, data
