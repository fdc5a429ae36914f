"""What every command line of minicnn shares: argument types, a quiet closed pipe, strict JSON output.

- ``positive_int`` / ``nonnegative_int``: argparse types that refuse, with a
  usage error saying what was expected, numbers a command cannot use (a
  negative ``--limit-train`` would otherwise be taken as a Python slice).
- ``run_command(main)``: runs ``main(argv)`` and, when the reader of stdout
  goes away (``python -m minicnn.gradcheck | head -5``), stops quietly with
  exit status 0 instead of a ``BrokenPipeError`` traceback, as Unix tools do.
- ``command(name)``: decorates a command's ``main``: a user's mistake (a
  ``ValueError``, ``CheckpointError`` included, or an ``OSError`` on a path the
  user gave) becomes one line ``minicnn NAME: error: ...`` on stderr and exit
  code 2, never a traceback; programming errors still raise, as they should.
- ``write_json(path, data)``: valid JSON always (a NaN or infinite number is
  written as ``null``), written atomically so a crash never leaves half a file.
"""
import argparse
import functools
import json
import math
import os
import sys

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


USER_ERRORS = (ValueError, OSError)


def error_message(err):
    """One line for ``err``: an OSError as 'strerror: filename', anything else as its text."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
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
