"""Where data sets live: one folder per user, the convention of keras, scikit-learn and torchvision.

``data_home()`` is ``$MINICNN_DATA``, else ``$XDG_CACHE_HOME/minicnn``, else
``~/.cache/minicnn``; a data set lives in ``data_home() / <name>``
(``mnist``, ``fashion-mnist``), so every folder you work from shares one
download. ``--root`` / ``--data`` on the command line (``root`` in Python)
overrides it; ``minicnn fetch --where`` prints it.

Earlier versions (0.1) put data in ``./datasets/<name>`` under the current
folder. ``dataset_root`` still finds a complete set there when the default
folder has none, uses it, and says once, in one line, where the default is now.
"""
import os
import sys
from pathlib import Path

ENV = "MINICNN_DATA"
LEGACY = Path("datasets")       # relative: the current folder's datasets/<name>, where 0.1 wrote
_told = set()                   # data sets whose legacy folder was announced in this process


def data_home(environ=None):
    """The folder that holds every data set's folder (nothing is created); a Path.

    ``$MINICNN_DATA``, else ``$XDG_CACHE_HOME/minicnn`` (an absolute path only,
    as the XDG specification says), else ``~/.cache/minicnn``.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV):
        return Path(env[ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "minicnn"
    try:
        home = Path.home()
    except RuntimeError:            # no $HOME and no entry in the password database
        raise ValueError(f"cannot find a home folder for the data: set {ENV} to a folder, or give --root DIR") from None
    return home / ".cache" / "minicnn"


def _complete(folder, files):
    return all((folder / name).is_file() for name in files)


def dataset_root(ds, root=None):
    """The folder of data set ``ds`` (an ``IdxDataset``): ``root`` when given, else its default; a Path.

    The default is ``data_home() / ds.command``, unless that folder lacks some
    of the four files and ``./datasets/<name>`` (where version 0.1 wrote) has
    them all: then that one, with a line on stderr naming the new default.
    """
    if root is not None:
        return Path(root)
    home = data_home() / ds.command
    legacy = LEGACY / ds.command
    files = ds.files.values()
    if not _complete(home, files) and _complete(legacy, files):
        if ds.command not in _told:
            _told.add(ds.command)
            print(f"{ds.name}: using {legacy.resolve()} (where minicnn 0.1 put it); the default folder is now {home}: "
                  f"move the files there, or set {ENV}", file=sys.stderr)
        return legacy
    return home


def is_default(ds, root):
    """True when ``root`` is the folder ``dataset_root(ds)`` picks by itself (so a hint need not name it)."""
    return Path(root).resolve() in {(data_home() / ds.command).resolve(), (LEGACY / ds.command).resolve()}
