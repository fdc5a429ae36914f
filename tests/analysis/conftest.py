"""The analysis tests' helpers; their small trained checkpoint, ``trained_run``, is in tests/conftest.py."""
import pytest

from minicnn.utils import plotting


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setattr(plotting, "have_matplotlib", lambda: False)
    monkeypatch.setattr(plotting, "_hint_given", False)


def read_png(path):
    """The PNG at ``path`` as an (H, W, 4) float array, checked to be a real, non-blank picture."""
    image = pytest.importorskip("matplotlib.image").imread(path)
    assert image.shape[0] >= 150 and image.shape[1] >= 150, image.shape
    assert image[..., :3].std() > 0.05  # not blank
    return image
