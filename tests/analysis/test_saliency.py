import numpy as np

from minicnn.analysis import saliency
from minicnn.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from minicnn.nn.model import Sequential
from tests.analysis.conftest import read_png


def test_input_gradient_equals_finite_differences():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 3, 3, padding=1, rng=rng, dtype=np.float64), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(3 * 4 * 4, 5, rng=rng, dtype=np.float64)])
    x = rng.normal(size=(1, 1, 8, 8))
    logits, cls, grad = saliency.input_gradient(model, x)
    assert cls == int(np.argmax(logits)) and grad.shape == (1, 8, 8) and grad.dtype == np.float64
    eps = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        for sign in (1, -1):
            xp = x.copy()
            xp[idx] += sign * eps
            numeric[idx] += sign * model.forward(xp)[0, cls] / (2 * eps)
    err = np.abs(grad - numeric[0]).max() / max(1e-8, np.abs(grad).max() + np.abs(numeric).max())
    assert err < 1e-7, err
    assert np.abs(grad).max() > 0


def test_ascii_heatmap():
    text = saliency.ascii_heatmap(np.array([[0.0, 1.0], [0.5, 0.0]]))
    assert text.splitlines() == ["  @@", "==  "] or text.splitlines() == ["  @@", "++  "]


def test_command_writes_the_figure(trained_run, mnist_root, tmp_path, capsys):
    assert saliency.main([str(trained_run), "--data", str(mnist_root), "--out", str(tmp_path)]) == 0
    read_png(tmp_path / "saliency.png")
    assert "predicted" in capsys.readouterr().out


def test_text_without_matplotlib(trained_run, mnist_root, tmp_path, capsys, no_matplotlib):
    assert saliency.main([str(trained_run), "--data", str(mnist_root), "--out", str(tmp_path), "--index", "1"]) == 0
    out = capsys.readouterr().out
    rows = out.split("'@'")[1].splitlines()[1:]
    assert len(rows) == 28 and all(len(r) <= 56 for r in rows) and "@" in "".join(rows)
