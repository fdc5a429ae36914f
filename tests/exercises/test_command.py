"""minicnn exercises (list, start, check, solution), and train/sobel --mine with the library's solutions copied."""
import json

import pytest

from minicnn.exercises import command, solutions
from minicnn.exercises.catalog import EXERCISES
from minicnn.experiments import learn_sobel, train_mnist
from minicnn.nn import ops


def _copy_solutions(folder, names=EXERCISES):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.py").write_text(solutions.source(name), encoding="utf-8")
    return folder


def test_start_writes_a_skeleton_once_and_the_list_shows_states(tmp_path, capsys):
    folder = tmp_path / "mine"
    assert command.main(["start", "conv2d_forward", "--dir", str(folder)]) == 0
    text = (folder / "conv2d_forward.py").read_text()
    assert "def conv2d_forward(x, W, b, stride=1, padding=0):" in text and "[[-4,2,4],[0,0,0],[0,0,0]]" in text
    (folder / "conv2d_forward.py").write_text("# my work\n")
    assert command.main(["start", "conv2d_forward", "--dir", str(folder)]) == 2
    assert (folder / "conv2d_forward.py").read_text() == "# my work\n"
    _copy_solutions(folder, ["relu_forward"])
    (folder / "relu_backward.py").write_text("def relu_backward(dout, x):\n    return dout\n")
    capsys.readouterr()
    assert command.main(["--dir", str(folder)]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:13]}
    assert lines == {**{name: "not" for name in EXERCISES}, "conv2d_forward": "started", "relu_forward": "passed",
                     "relu_backward": "wrong"}


def test_check_exits_0_1_2_for_a_folder(tmp_path, capsys):
    folder = _copy_solutions(tmp_path / "mine")
    assert command.main(["check", str(folder)]) == 0
    (folder / "relu_backward.py").write_text("def relu_backward(dout, x):\n    return dout * (dout > 0)\n")
    assert command.main(["check", str(folder)]) == 1
    assert "mask taken from dout" in capsys.readouterr().out
    (folder / "relu_forward.py").write_text("def relu_forward(x):\n    raise NotImplementedError\n")
    assert command.main(["check", str(folder)]) == 2
    assert command.main(["check", str(tmp_path / "nothing")]) == 2


def test_solution_prints_the_textbook_version_and_where_it_lives(capsys):
    assert command.main(["solution", "conv2d_backward"]) == 0
    out = capsys.readouterr().out
    assert "minicnn/nn/textbook.py: conv2d_backward" in out and "def conv2d_backward(dout, x, W, b, stride=1, padding=0):" in out


@pytest.fixture
def unregister_mine():
    yield
    if "mine" in ops.implementations():
        ops.unregister("mine")


def test_train_mine_with_copied_solutions_gives_the_textbook_loss(mnist_root, tmp_path, capsys, unregister_mine):
    folder = _copy_solutions(tmp_path / "mine")
    common = ["--data", str(mnist_root), "--limit-train", "96", "--limit-test", "32", "--epochs", "1",
              "--batch-size", "32", "--no-progress"]
    assert train_mnist.main(common + ["--out", str(tmp_path / "tb"), "--engine", "textbook"]) == 0
    assert train_mnist.main(common + ["--out", str(tmp_path / "mine_run"), "--mine", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "your conv2d_forward, conv2d_backward, maxpool2d_forward" in out and "engine: mine" in out
    tb, mine = (json.loads((tmp_path / d / "metrics.json").read_text())["history"][0] for d in ("tb", "mine_run"))
    # the network is float32: the two orders of summation agree to its rounding, not bit for bit
    assert mine["loss"] == pytest.approx(tb["loss"], rel=1e-6) and mine["test_loss"] == pytest.approx(tb["test_loss"], rel=1e-6)


def test_sobel_mine_with_copied_solutions_reaches_sobel(tmp_path, capsys, unregister_mine):
    folder = _copy_solutions(tmp_path / "mine", ["conv2d_forward", "conv2d_backward", "sgd_momentum_step"])
    learn_sobel.main(["--mine", str(folder), "--out", str(tmp_path / "run"), "--steps", "400", "--target-cosine", "0.999"])
    out = capsys.readouterr().out
    assert "your conv2d_forward and conv2d_backward and sgd_momentum_step learned these kernels" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["engine"] == "mine" and min(metrics["cosine"].values()) >= 0.999
