"""Data sets of four IDX files, verified by SHA-256: the one code path MNIST and Fashion-MNIST share.

An ``IdxDataset`` names the four standard files (train/test images/labels),
their shapes, the SHA-256 of every decoded uint8 array (row-major bytes) and
the label counts per class. On top of it:

- ``verify_array`` / ``read_verified``: a decoded array, or a file read with
  the strict IDX reader, checked against shape, digest and label counts;
- ``load``: the four verified arrays from a folder, fetching missing files
  first when asked (never overwriting a file that is there but wrong);
- ``fetch``: make a folder hold the four verified files, trying the data set's
  sources in order (a source is a function ``keys -> {key: file bytes or
  uint8 array}``); everything a source gives is decoded and verified before
  it is written, atomically, and a source that fails is reported in one line
  before the next is tried;
- ``download`` / ``url_source``: files from a base URL, with a timeout.

Nothing here knows a particular data set; ``mnist.py`` and
``fashion_mnist.py`` hold the constants and their own sources.
"""
import hashlib
import io
import shlex
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.data.home import dataset_root, is_default
from minicnn.data.idx import load_idx, read_idx, write_bytes_atomic, write_idx

KEYS = ("train_images", "train_labels", "test_images", "test_labels")
STANDARD_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# The shapes of the four standard arrays: 60,000 training and 10,000 test images of 28x28 pixels, and their labels.
STANDARD_SHAPES = {
    "train_images": (60000, 28, 28), "train_labels": (60000,),
    "test_images": (10000, 28, 28), "test_labels": (10000,),
}


@dataclass(frozen=True)
class IdxDataset:
    """What identifies a data set of four IDX files; see the module docstring.

    ``name`` is for messages ("Fashion-MNIST"), ``command`` for the fetch
    command line ("fashion-mnist") and for its folder in the data home
    (``minicnn.data.home``); ``mean``/``std`` are those of the training pixels
    scaled to [0, 1]; ``class_names`` has one entry per label.
    """
    name: str
    command: str
    files: dict
    shapes: dict
    sha256: dict
    label_counts: dict
    mean: float
    std: float
    class_names: tuple

    def fetch_hint(self, root=None):
        """"run 'minicnn fetch NAME'", with ``--root`` when ``root`` is not the default folder."""
        where = "" if root is None or is_default(self, root) else f" --root {shlex.quote(str(root))}"
        return f"run 'minicnn fetch {self.command}{where}'"


def verify_array(ds, key, array, name=None):
    """Check one decoded array (key as in ``ds.files``) against its shape, SHA-256 and label counts."""
    name = name or ds.files[key]
    if array.dtype != np.uint8 or array.shape != ds.shapes[key]:
        raise ValueError(f"{name}: expected uint8 {ds.shapes[key]}, got {array.dtype} {array.shape}")
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    if digest != ds.sha256[key]:
        raise ValueError(f"{name}: content does not match {ds.name}: SHA-256 of the decoded array is "
                         f"{digest}, expected {ds.sha256[key]}")
    if key in ds.label_counts:  # implied by the digest; a cheap second opinion
        counts = tuple(int(c) for c in np.bincount(array, minlength=len(ds.class_names)))
        if counts != tuple(ds.label_counts[key]):
            raise ValueError(f"{name}: label counts {counts}, expected {tuple(ds.label_counts[key])}")


def read_verified(ds, root, key):
    """Read ``root / ds.files[key]`` with the strict IDX reader and verify it; the uint8 array."""
    path = Path(root) / ds.files[key]
    array = read_idx(path, dtype=np.uint8, shape=ds.shapes[key])
    verify_array(ds, key, array, name=str(path))
    return array


def with_hint(ds, error, root):
    return f"{error}\nDelete the file, or {ds.fetch_hint(root)} to replace it."


def load(ds, root, fetch_missing, *, download=True, progress=None):
    """The four verified uint8 arrays of ``ds`` from ``root`` (train images, train labels, test images, test labels).

    ``root`` None is the data set's default folder (``minicnn.data.home``).
    Missing files are fetched first with ``fetch_missing(root, progress=..., replace_bad=False)``
    when ``download``; a file that is there but wrong is refused, never replaced.
    """
    root = dataset_root(ds, root).resolve()
    missing = [name for name in ds.files.values() if not (root / name).exists()]
    if missing and not download:
        raise ValueError(f"{ds.name} files missing in {root}: {', '.join(missing)}; {ds.fetch_hint(root)} to get them")
    if missing:
        print(f"{ds.name}: {len(missing)} file(s) missing in {root}; fetching", file=sys.stderr)
        report = fetch_missing(root, progress=progress, replace_bad=False)
        if isinstance(report, dict) and report.get("source"):
            print(f"{ds.name}: fetched from {report['source']}", file=sys.stderr)
    try:
        return tuple(read_verified(ds, root, key) for key in KEYS)
    except ValueError as e:
        raise ValueError(with_hint(ds, e, root)) from None


def store_verified(ds, root, key, content, where):
    """Decode ``content`` (IDX file bytes, raw or gzip, or a uint8 array), verify it, then write it atomically.

    Bytes are written as they came; an array is written as gzip IDX. Returns
    the array read back from disk. Nothing is written when verification fails.
    """
    path = Path(root) / ds.files[key]
    if isinstance(content, np.ndarray):
        verify_array(ds, key, content, name=where)
        write_idx(path, content)
    else:
        array = load_idx(io.BytesIO(content), where, dtype=np.uint8, shape=ds.shapes[key])
        verify_array(ds, key, array, name=where)
        write_bytes_atomic(path, content)
    return read_verified(ds, root, key)  # what is on disk, decoded again


def download(url, progress=None, timeout=60):
    """The bytes at ``url`` (tqdm bar while reading); ``RuntimeError`` naming the URL when it fails."""
    from tqdm import tqdm
    chunks = []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            size = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                      disable=None if progress is None else not progress) as bar:
                for chunk in iter(lambda: r.read(1 << 16), b""):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts; ValueError: a malformed URL
        raise RuntimeError(f"{url}: download failed: {getattr(e, 'reason', None) or e}") from None
    return b"".join(chunks)


def url_source(ds, base, *, progress=None, timeout=60):
    """A source that downloads the standard file names from ``base/``."""
    def get(keys):
        return {key: (download(f"{base.rstrip('/')}/{ds.files[key]}", progress, timeout),
                      f"{base.rstrip('/')}/{ds.files[key]}") for key in keys}
    return get


class LocalWriteError(Exception):
    """Wraps an OSError from writing a verified file into ``root`` (not the source's fault)."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def fetch(ds, root, sources, *, replace_bad=True):
    """Make ``root`` hold the four verified files of ``ds``; keep those that already verify.

    ``sources`` is a list of ``(label, get)``: ``get(keys)`` returns
    ``{key: (content, where)}`` for the missing keys (content: file bytes or a
    uint8 array; ``where`` names it in errors) or raises ``RuntimeError``,
    ``ValueError`` or ``OSError``. They are tried in order until one gives
    files that all verify; each failure is reported in one line on stderr.
    An ``OSError`` writing into ``root`` (a full disk, a read-only folder) is
    raised at once, naming the file: another source would fail the same way.
    With a single source its own error is raised; with several, one error
    listing them all.

    A file that is present but fails verification is replaced, or with
    ``replace_bad=False`` its error is raised before anything is fetched.

    ``root`` None is the data set's default folder (``minicnn.data.home``).

    Returns a dict: ``root``, ``source`` ("present" or the label of the source
    used), ``written`` (file names), ``sha256`` and ``label_counts`` of the
    verified arrays, and ``failed`` (the one-line reasons of sources skipped).
    """
    root = dataset_root(ds, root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    good, todo = {}, []
    for key in KEYS:
        name = ds.files[key]
        try:
            good[key] = read_verified(ds, root, key)
        except ValueError as e:
            if (root / name).exists() and not replace_bad:
                raise ValueError(with_hint(ds, e, root)) from None
            if (root / name).exists():
                print(f"{ds.name}: replacing {name}: {e}", file=sys.stderr)
            todo.append(key)
    source, failed, written = "present", [], []
    for label, get in (sources if todo else []):
        try:
            got = get(list(todo))
            for key in list(todo):
                content, where = got[key]
                try:
                    good[key] = store_verified(ds, root, key, content, where)
                except OSError as e:    # our disk, not the source: another source would fail the same way
                    raise LocalWriteError(e) from None
                todo.remove(key)
                written.append(ds.files[key])
        except LocalWriteError as e:
            raise e.error from None
        except (RuntimeError, ValueError, OSError) as e:
            if len(sources) == 1:
                raise
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            failed.append(f"{label}: {reason}")
            print(f"{ds.name}: {label} failed ({reason}); trying the next source"
                  if (label, get) != sources[-1] else f"{ds.name}: {label} failed ({reason})", file=sys.stderr)
            continue
        source = label
        break
    if todo:
        raise RuntimeError(f"{ds.name}: no source gave verified files for "
                           f"{', '.join(ds.files[k] for k in todo)}:\n  " + "\n  ".join(failed))
    return {"root": str(root), "source": source, "written": written, "failed": failed,
            "sha256": {k: hashlib.sha256(good[k].tobytes()).hexdigest() for k in KEYS},
            "label_counts": {k: np.bincount(good[k], minlength=len(ds.class_names)).tolist()
                             for k in ds.label_counts}}
