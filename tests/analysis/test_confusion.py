import numpy as np

from minicnn.analysis import confusion
from minicnn.analysis.common import Run
from minicnn.training.loop import evaluate
from tests.analysis.conftest import read_png


def test_confusion_matrix_and_mistakes():
    counts = confusion.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3)
    np.testing.assert_array_equal(counts, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    np.testing.assert_array_equal(confusion.confident_mistakes(probs, np.array([0, 0, 1, 0])), [1, 3, 2])


def test_matrix_matches_evaluate(trained_run, mnist_root):
    run = Run(trained_run)
    _, x, y = run.test_set(mnist_root, limit=300)
    pred = confusion.softmax(run.model.forward(x).astype(np.float64)).argmax(axis=1)
    counts = confusion.confusion_matrix(y, pred, 10)
    _, accuracy = evaluate(run.model, x, y)
    assert counts.sum() == 300 and np.trace(counts) / 300 == accuracy


def test_command_writes_both_figures(trained_run, mnist_root, tmp_path, capsys):
    assert confusion.main([str(trained_run), "--data", str(mnist_root), "--limit", "300", "--out", str(tmp_path)]) == 0
    read_png(tmp_path / "confusion.png")
    read_png(tmp_path / "mistakes.png")
    out = capsys.readouterr().out
    assert "true \\ predicted" in out and "most confident mistakes" in out


def test_text_without_matplotlib(trained_run, mnist_root, tmp_path, capsys, no_matplotlib):
    assert confusion.main([str(trained_run), "--data", str(mnist_root), "--limit", "100", "--out", str(tmp_path)]) == 0
    assert "accuracy" in capsys.readouterr().out and not list(tmp_path.iterdir())
