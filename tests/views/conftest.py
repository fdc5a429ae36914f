"""A small trained checkpoint for the views' tests: a narrow network, a few seconds of MNIST."""
import importlib.util
from pathlib import Path

import pytest

from minicnn.edges import viz

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "train_mnist.py"


def _train_mnist():
    spec = importlib.util.spec_from_file_location("train_mnist_for_views", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def trained_run(mnist_root, tmp_path_factory):
    """The folder of a 1-epoch run on 8000 MNIST images (checkpoint.npz, metrics.json), tested on 300."""
    out = tmp_path_factory.mktemp("views-run")
    code = _train_mnist().main(["--data", str(mnist_root), "--limit-train", "8000", "--limit-test", "300", "--epochs", "1",
                             "--batch-size", "32", "--max-shift", "0", "--warmup", "0.1", "--channels", "8,16",
                             "--hidden", "64", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setattr(viz, "have_matplotlib", lambda: False)
    monkeypatch.setattr(viz, "_hint_given", False)


def read_png(path):
    """The PNG at ``path`` as an (H, W, 4) float array, checked to be a real, non-blank picture."""
    image = pytest.importorskip("matplotlib.image").imread(path)
    assert image.shape[0] >= 150 and image.shape[1] >= 150, image.shape
    assert image[..., :3].std() > 0.05  # not blank
    return image
