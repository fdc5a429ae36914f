"""minicnn.exercises.checks: skeletons cannot be used, the library's solutions pass, each known mistake is named."""
import sys

import pytest

from minicnn.exercises import checks, solutions
from minicnn.exercises.catalog import EXERCISES, skeleton

RIGHT = "import numpy as np\nfrom minicnn.exercises.reference import {name} as _right\n\n\n"

# (exercise, body of the wrong function after RIGHT's import, words the diagnosis must contain)
MISTAKES = [
    ("conv2d_single", "def conv2d_single(image, kernel):\n    return _right(image, kernel[::-1, ::-1])\n", "flipped"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x, W[..., ::-1, ::-1], b, stride, padding)\n", "flipped"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x, W, b, stride, padding)[..., :-1, :]\n", "off by one"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n    return _right(x, W, b, 1, padding)\n",
     "stride ignored"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x, W, b, stride, (padding, 0, padding, 0))\n", "one side"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x, W, 0 * b, stride, padding)\n", "bias missing"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x, W, 0 * b, stride, padding) + W.shape[1] * b[:, None, None]\n", "per position"),
    ("conv2d_forward", "def conv2d_forward(x, W, b, stride=1, padding=0):\n"
                       "    return _right(x[:, -1:], W[:, -1:], b, stride, padding)\n", "channels not summed"),
    ("conv2d_backward", "def conv2d_backward(dout, x, W, b, stride=1, padding=0):\n"
                        "    dx, dW, db = _right(dout, x, W, b, stride, padding)\n"
                        "    return dx, _right(dout[-1:], x[-1:], W, b, stride, padding)[1], db\n",
     "dW not summed over the batch"),
    ("maxpool2d_backward", "def maxpool2d_backward(dout, x, size=2, stride=2):\n"
                           "    return np.kron(dout, np.ones((size, size))) if size == stride else _right(dout, x, size, stride)\n",
     "every cell"),
    ("relu_backward", "def relu_backward(dout, x):\n    return dout * (dout > 0)\n", "mask taken from dout"),
    ("softmax_cross_entropy", "def softmax_cross_entropy(logits, labels):\n"
                              "    loss, d = _right(logits, labels)\n    return loss * len(logits), d * len(logits)\n",
     "not divided by the batch size"),
    ("sgd_momentum_step", "def sgd_momentum_step(param, grad, velocity, lr, momentum):\n"
                          "    v = momentum * velocity - lr * grad\n    return param + v, v\n", "another library"),
]


def _write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_skeleton_cannot_be_used_and_the_solution_passes(tmp_path, name):
    result = checks.check_file(_write(tmp_path, name, skeleton(name)))
    assert result.code == checks.UNUSABLE and "NotImplementedError" in result.message
    result = checks.check_file(_write(tmp_path, name, solutions.source(name)))
    assert result.code == checks.PASSED, result.message


@pytest.mark.parametrize(("name", "body", "words"), MISTAKES, ids=[f"{n}-{w}" for n, _, w in MISTAKES])
def test_each_known_mistake_is_wrong_and_named(tmp_path, name, body, words):
    result = checks.check_file(_write(tmp_path, name, RIGHT.format(name=name) + body))
    assert result.code == checks.WRONG, result.message
    assert words in result.message, result.message
    assert "expected" in result.message or "finite differences" in result.message


def test_a_failure_names_the_case_in_words_and_the_first_wrong_element(tmp_path):
    body = "def conv2d_forward(x, W, b, stride=1, padding=0):\n    return _right(x, W, b, stride, padding) + (stride == 2)\n"
    message = checks.check_file(_write(tmp_path, "conv2d_forward", RIGHT.format(name="conv2d_forward") + body)).message
    assert "(stride 2, padding 1, 2 images of 3x7x5, 4 filters 3x3): out[0, 0, 0, 0]: expected" in message


def test_a_backward_that_agrees_with_nothing_fails_on_finite_differences_or_the_library(tmp_path):
    body = "def relu_backward(dout, x):\n    return dout * (x >= 0) * 1.001\n"
    result = checks.check_file(_write(tmp_path, "relu_backward", RIGHT.format(name="relu_backward") + body))
    assert result.code == checks.WRONG


def test_an_exception_shows_only_the_learners_lines_and_nothing_is_written(tmp_path):
    path = _write(tmp_path, "relu_forward", "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0) + y\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = checks.check_file(path)
    assert result.code == checks.UNUSABLE
    assert "line 5, in relu_forward" in result.message and "NameError" in result.message
    assert "checks.py" not in result.message
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # no __pycache__
    assert "relu_forward" not in sys.modules


@pytest.mark.parametrize(("text", "words"), [("def relu_forward(x)\n", "syntax error"),
                                             ("def relu(x):\n    return x\n", "has no function relu_forward")])
def test_unusable_files_exit_2_with_what_is_wrong(tmp_path, text, words):
    result = checks.check_file(_write(tmp_path, "relu_forward", text))
    assert result.code == checks.UNUSABLE and words in result.message


def test_the_time_limit_stops_a_slow_exercise(tmp_path):
    path = _write(tmp_path, "relu_forward", "def relu_forward(x):\n    while True:\n        pass\n")
    result = checks.check_file(path, time_limit=0.5)
    assert result.code == checks.UNUSABLE and "took over 0.5 s" in result.message
