"""Fashion-MNIST: 70,000 28x28 grey pictures of clothing in 10 classes, verified like MNIST.

``load_fashion_mnist(root)`` reads the four standard IDX files from ``root``
(None, the default: the per-user data folder of ``minicnn.data.home``, e.g.
``~/.cache/minicnn/fashion-mnist``) and checks the SHA-256 of every decoded array and the label counts (6,000 per
class in train, 1,000 in test), through the same code as MNIST
(``minicnn.data.verified``). With ``download=True`` (the default) missing
files are fetched first, as ``minicnn fetch fashion-mnist`` would,
from the first of these sources that gives files that verify:

1. files already in ``root`` that verify;
2. the official download location, ``OFFICIAL_BASE`` (the four ``.gz`` files),
   with a short timeout so a machine without internet moves on quickly;
3. the Debian package ``dataset-fashion-mnist``, which ships the same four
   files under ``usr/share/datasets/fashion-mnist/``: ``apt-get download``
   (no root needed, nothing installed) brings the ``.deb`` into a temporary
   folder and ``minicnn.data.deb`` reads the files out of it; nothing in the
   package is run.

``from_url`` (``--from-url BASE``) replaces sources 2 and 3 by a mirror you
name. Every file is verified before it is written, atomically.
"""
import shutil
import subprocess
import tempfile
from pathlib import Path

from minicnn.data import images, verified
from minicnn.data.deb import read_deb_files
from minicnn.data.verified import STANDARD_FILES, STANDARD_SHAPES, IdxDataset

FASHION_FILES = dict(STANDARD_FILES)
FASHION_SHAPES = dict(STANDARD_SHAPES)
# SHA-256 of the decoded uint8 arrays' bytes in row-major order.
FASHION_SHA256 = {
    "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
FASHION_LABEL_COUNTS = {"train_labels": (6000,) * 10, "test_labels": (1000,) * 10}
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # of the training pixels scaled to [0, 1]
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST = IdxDataset(name="Fashion-MNIST", command="fashion-mnist", files=FASHION_FILES, shapes=FASHION_SHAPES,
                           sha256=FASHION_SHA256, label_counts=FASHION_LABEL_COUNTS, mean=FASHION_MEAN,
                           std=FASHION_STD, class_names=CLASS_NAMES)

OFFICIAL_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
OFFICIAL_TIMEOUT = 15                       # seconds per connection attempt
DEB_PACKAGE = "dataset-fashion-mnist"
DEB_DIR = "usr/share/datasets/fashion-mnist"
APT_TIMEOUT = 600                           # seconds for apt-get download (31 MB)


def load_fashion_mnist(root=None, *, download=True, progress=None):
    """Load Fashion-MNIST as verified uint8 arrays.

    Parameters
    ----------
    root : str, Path or None
        Folder with the four standard ``.gz`` files; relative to the current directory.
        None: the default folder (``minicnn.data.home.dataset_root``).
    download : bool
        Fetch missing files first (see ``fetch_fashion_mnist``). Files that are
        present but wrong are never overwritten here: the error says how to replace them.
    progress : bool or None
        tqdm bars while fetching; None shows them only on a terminal.

    Returns
    -------
    train_images (60000, 28, 28), train_labels (60000,),
    test_images (10000, 28, 28), test_labels (10000,); all uint8.
    """
    return verified.load(FASHION_MNIST, root, lambda root, **kw: fetch_fashion_mnist(root, **kw),
                         download=download, progress=progress)


def normalize(x, mean=FASHION_MEAN, std=FASHION_STD):
    """uint8 images -> float32 standardised: (pixel / 255 - mean) / std (Fashion-MNIST's by default).

    Shape: x (N, H, W) uint8 -> out (N, 1, H, W) float32
    """
    return images.standardize(x, mean, std)


def load_fashion_mnist_float(root=None, *, standardize=True, download=True, progress=None):
    """``load_fashion_mnist`` ready for a network: images float32 (N, 1, 28, 28), labels int64 (N,)."""
    arrays = load_fashion_mnist(root, download=download, progress=progress)
    return images.float_arrays(arrays, FASHION_MEAN, FASHION_STD, standardize)


# ----------------------------------------------------------------- the Debian package

def apt_get_download(package, dest, timeout=APT_TIMEOUT):
    """Run ``apt-get download PACKAGE`` in ``dest`` (needs no root, installs nothing); the ``.deb``'s path."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise RuntimeError(f"apt-get not found: the Debian package {package} needs a Debian or Ubuntu system "
                           "(or use --from-url BASE)")
    try:
        done = subprocess.run([apt_get, "download", package], cwd=dest, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"'apt-get download {package}' took more than {timeout} s; stopped it") from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout or "").strip()
        if "Unable to locate" in text or "no installation candidate" in text or "Can't select" in text:
            raise RuntimeError(f"apt knows no package {package}: its package lists are missing or old; "
                               f"run 'apt-get update' (as root, e.g. 'sudo apt-get update') once, then try again")
        tail = " / ".join(text.splitlines()[-3:])
        raise RuntimeError(f"'apt-get download {package}' failed with exit code {done.returncode}: {tail}")
    debs = sorted(Path(dest).glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"'apt-get download {package}' left {sorted(p.name for p in Path(dest).iterdir())}, "
                           f"expected one {package}_*.deb")
    return debs[0]


def deb_source():
    """The Debian-package source: ``apt_get_download`` then ``read_deb_files`` (looked up at call time)."""
    def get(keys):
        with tempfile.TemporaryDirectory(prefix="minicnn-fashion-") as tmp:
            Path(tmp).chmod(0o755)                  # lets apt's unprivileged downloader write here when run as root
            deb = apt_get_download(DEB_PACKAGE, Path(tmp))
            paths = {key: f"{DEB_DIR}/{FASHION_FILES[key]}" for key in keys}
            files = read_deb_files(deb, paths.values())
            return {key: (files[paths[key]], f"{deb.name}!{paths[key]}") for key in keys}
    return get


def fetch_fashion_mnist(root=None, *, from_url=None, progress=None, replace_bad=True):
    """Make ``root`` hold the four verified Fashion-MNIST files; keep those that already verify.

    Missing files come from the official site, else the Debian package; or
    only from ``from_url`` when given. A file that is present but fails
    verification is replaced, or with ``replace_bad=False`` its error is
    raised before anything is fetched.

    Returns the report of ``minicnn.data.verified.fetch``: ``source`` is
    "present", "official site <URL>", "Debian package dataset-fashion-mnist"
    or the ``from_url``; ``failed`` lists the sources tried before it.
    """
    if from_url:
        sources = [(from_url, verified.url_source(FASHION_MNIST, from_url, progress=progress))]
    else:
        sources = [(f"official site {OFFICIAL_BASE}",
                    verified.url_source(FASHION_MNIST, OFFICIAL_BASE, progress=progress, timeout=OFFICIAL_TIMEOUT)),
                   (f"Debian package {DEB_PACKAGE}", deb_source())]
    return verified.fetch(FASHION_MNIST, root, sources, replace_bad=replace_bad)
