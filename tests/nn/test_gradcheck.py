import subprocess
import sys

import numpy as np
import pytest

from minicnn import Dense
from minicnn.nn.gradcheck import check_layer, main, numerical_gradient, rel_error, run_all


def test_rel_error():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 0.0], [1.1, 0.0]) == pytest.approx(0.1 / 2.1)
    assert rel_error([0.0], [0.0]) == 0.0


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored


def test_checker_refuses_float32_layers():
    with pytest.raises(ValueError, match=r"build it with dtype=np.float64"):
        check_layer(Dense(3, 2, rng=np.random.default_rng(0)), np.zeros((1, 3)))


def test_table_passes_and_covers_every_layer_type(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "small CNN", "BatchNorm2D 3 (training)",
                 "BatchNorm2D 2 (eval)", "BatchNorm1D 4 affine=False", "Dropout", "AvgPool2D k3 s2 p1", "GlobalAvgPool2D",
                 "LeakyReLU", "Tanh", "Sigmoid", "CNN + BatchNorm + Dropout"):
        assert name in out
    rows = run_all()
    assert all(err < tol for _, _, err, tol in rows)


def test_module_entry_point_exits_zero():
    done = subprocess.run([sys.executable, "-m", "minicnn.gradcheck"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout


def test_non_contiguous_inputs_are_checked_not_silently_ignored():
    rng = np.random.default_rng(0)
    x_t = rng.standard_normal((4, 3)).T  # a transposed view, as layers return channels-last activations
    assert check_layer(Dense(4, 2, rng=rng, dtype=np.float64), x_t, rng=rng)["dx"] < 1e-7
    with pytest.raises(ValueError, match="must be C-contiguous"):
        numerical_gradient(lambda: 0.0, x_t)
