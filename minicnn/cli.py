"""What every command shares: a user's mistake becomes one line on stderr and exit code 2, never a traceback.

A user error is a ``ValueError`` (``CheckpointError`` included) or an
``OSError`` on a path the user gave (missing file, read-only folder, ...).
Programming errors still raise, with their traceback, as they should.
"""
import functools
import os
import sys

USER_ERRORS = (ValueError, OSError)


def error_message(err):
    """One line for ``err``: an OSError as 'strerror: filename', anything else as its text."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err)


def command(name):
    """Decorate ``main(argv) -> int``: user errors print ``minicnn NAME: error: ...`` and return 2.

    A closed stdout (``python -m minicnn NAME | head``) ends the command quietly with 0, as Unix tools do.
    """
    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            try:
                return main(argv)
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            except USER_ERRORS as err:
                print(f"minicnn {name}: error: {error_message(err)}", file=sys.stderr)
                return 2
        return run
    return wrap
