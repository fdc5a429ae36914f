"""What every command line of minicnn shares: argument types, a quiet closed pipe, strict JSON output.

- ``positive_int`` / ``nonnegative_int`` / ``int_in`` / ``float_in``: argparse
  types that refuse, with a usage error saying what was expected, numbers a
  command cannot use (a negative ``--limit-train`` would otherwise be taken as
  a Python slice; a NaN learning rate would train NaNs).
- ``run_command(main)``: runs ``main(argv)`` and, when the reader of stdout
  goes away (``python -m minicnn.gradcheck | head -5``), stops quietly with
  exit status 0 instead of a ``BrokenPipeError`` traceback, as Unix tools do.
- ``outputs_may_close()``: for work that must finish whoever reads it (a
  training run): while active, a stdout or stderr whose reader went away
  (``| head -1``) silently takes no more output, and the work goes on.
- ``command(name)``: decorates a command's ``main``: a user's mistake (a
  ``ValueError``, ``CheckpointError`` included, or an ``OSError`` on a path the
  user gave) becomes one line ``minicnn NAME: error: ...`` on stderr and exit
  code 2, never a traceback; programming errors still raise, as they should.
- ``write_json(path, data)``: valid JSON always (a NaN or infinite number is
  written as ``null``), written atomically so a crash never leaves half a file.
"""
import argparse
import contextlib
import errno
import functools
import json
import math
import os
import signal
import sys
import threading

from minicnn.utils.files import write_bytes_atomic


def _integer(text, ok, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text):
    """argparse type: a whole number >= 1."""
    return _integer(text, lambda v: v >= 1, "a whole number of at least 1")


def nonnegative_int(text):
    """argparse type: a whole number >= 0."""
    return _integer(text, lambda v: v >= 0, "a whole number of at least 0")


def int_in(low, high):
    """argparse type: a whole number from ``low`` to ``high`` (both included)."""
    def parse(text):
        return _integer(text, lambda v: low <= v <= high, f"a whole number from {low} to {high}")
    parse.__name__ = f"int_in_{low}_{high}"
    return parse


def float_in(low=None, high=None, *, low_open=False, high_open=False):
    """argparse type: a finite number in an interval, e.g. ``float_in(0, 10, low_open=True)`` for (0, 10].

    ``low`` / ``high`` None: no bound on that side.  NaN and infinities are always refused.
    """
    if low is not None and high is not None:
        expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        expected = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        expected = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        expected = "a finite number"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        ok = (math.isfinite(value)
              and (low is None or (value > low if low_open else value >= low))
              and (high is None or (value < high if high_open else value <= high)))
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


finite_float = float_in()


def nonnegative_int_list(text):
    """argparse type: comma-separated whole numbers >= 0, e.g. ``0,1,2``."""
    try:
        return [nonnegative_int(part.strip()) for part in text.split(",")]
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers of at least 0 "
                                         f"(like 0,1,2) in {text!r}: {e}") from None


def run_command(main, argv=None):
    """``main(argv)`` as an exit status; a reader that closed stdout early ends the command quietly with 0.

    ``main`` may return an int (the exit status) or anything else (status 0).
    """
    try:
        code = main(argv)
        sys.stdout.flush()  # inside the try: a failed flush at interpreter exit would print a warning
    except BrokenPipeError:
        # Point stdout at /dev/null so Python's final flush of what is still buffered is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return code if isinstance(code, int) else 0


class _Closable:
    """A text stream that, once its reader has gone (``BrokenPipeError``), drops everything written after.

    Its file descriptor is pointed at /dev/null then, so that whatever is still buffered, and Python's
    final flush at exit, go nowhere quietly.  Everything else is the wrapped stream's.
    """

    def __init__(self, stream):
        self._stream, self.gone = stream, False

    def _lost(self):
        self.gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):   # no file descriptor (e.g. a StringIO): nothing to point
            pass

    def write(self, text):
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._lost()

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def outputs_may_close():
    """Keep working when the reader of stdout or stderr goes away: further output to it is dropped.

    Python ignores SIGPIPE, so a write to a closed pipe raises ``BrokenPipeError`` instead of killing the
    process; this makes sure of it (in the main thread) and catches that error in ``sys.stdout`` and
    ``sys.stderr`` (tqdm bars and ``print`` alike) for the length of the block.
    """
    restore_pipe = None
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGPIPE"):
        if signal.getsignal(signal.SIGPIPE) not in (signal.SIG_IGN, None):
            restore_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (_Closable(s) if s is not None else s for s in saved)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        if restore_pipe is not None:
            signal.signal(signal.SIGPIPE, restore_pipe)


USER_ERRORS = (ValueError, OSError)


# What to do about a filesystem error, by errno: advice that fits it (running the same command again would not help).
_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, or choose a folder on another disk",
    errno.EDQUOT: "your disk quota is used up: free some space, or choose a folder on another disk",
    errno.EROFS: "that file system is read-only: choose a folder you can write to",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.EISDIR: "that is a folder: give a file name",
    errno.EACCES: "you have no permission there: choose a folder you can write to, or change its permissions",
    errno.EPERM: "the operation is not permitted there: choose a folder you can write to",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def has_advice(err):
    """Whether ``err`` is a filesystem error that running the same command again would not cure."""
    return isinstance(err, OSError) and err.errno in _ADVICE and err.errno not in (errno.ENOSPC, errno.EDQUOT)


def error_message(err):
    """One line for ``err``: an OSError as 'strerror: filename' with advice that fits it, anything else as its text."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
        advice = _ADVICE.get(err.errno)
        return f"{text} ({advice})" if advice else text
    return str(err)


def command(name):
    """Decorate ``main(argv) -> int`` so that it runs through ``run_command`` and user errors exit 2 with one line."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            try:
                return run_command(main, argv)
            except USER_ERRORS as err:
                print(f"minicnn {name}: error: {error_message(err)}", file=sys.stderr)
                return 2
        return run
    return wrap


def finite_or_none(data):
    """A copy of nested dicts/lists with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v) for v in data]
    return data


def write_json(path, data, indent=1):
    """Write ``data`` as strict JSON (non-finite numbers as null) to ``path``, atomically; returns ``path``."""
    text = json.dumps(finite_or_none(data), indent=indent, allow_nan=False)
    write_bytes_atomic(path, (text + "\n").encode())
    return path
