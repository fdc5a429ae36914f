import numpy as np
import pytest

from minicnn.analysis import predict
from minicnn.analysis.images import mnist_like
from tests.analysis.conftest import read_png

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")


def draw_one(path, size=(120, 160)):
    """A thick dark '1' on white paper, off centre, as someone would draw it."""
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).line([(80, 25), (80, 140)], fill=20, width=14)
    im.save(path)
    return path


def test_preparation_is_mnist_like(tmp_path):
    prepared = mnist_like(np.asarray(Image.open(draw_one(tmp_path / "one.png")), dtype=np.float64))
    assert prepared.shape == (28, 28) and prepared.dtype == np.uint8
    rows, cols = np.nonzero(prepared > 64)
    assert rows.max() - rows.min() + 1 in (19, 20, 21)          # longest side scaled to 20 pixels
    ys, xs = np.indices(prepared.shape)
    mass = prepared.astype(np.float64)
    assert abs((ys * mass).sum() / mass.sum() - 13.5) < 0.6 and abs((xs * mass).sum() / mass.sum() - 13.5) < 0.6
    assert prepared[0].max() == 0 and prepared[:, 0].max() == 0  # white ink on black


def test_a_drawn_one_is_read_as_one(trained_run, tmp_path, capsys):
    image = draw_one(tmp_path / "one.png")
    assert predict.main([str(trained_run), str(image), "--show", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{image}: 1 "), out
    read_png(tmp_path / "one_prepared.png")


def test_bad_pictures_get_one_line(trained_run, tmp_path, capsys):
    cases = {"text.png": b"hello", "empty.png": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    Image.new("1", (5000, 20)).save(tmp_path / "huge.png")
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    Image.new("L", (30, 30), 255).save(tmp_path / "pic.gif")
    expected = {"text.png": "not an image", "empty.png": "is empty", "huge.png": "at most 4096x4096",
                "blank.png": "no ink", "pic.gif": "GIF image", "missing.png": "no such image file"}
    for name, message in expected.items():
        assert predict.main([str(trained_run), str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
