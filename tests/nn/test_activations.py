"""LeakyReLU, Tanh and Sigmoid: values, gradients, a Sigmoid that does not overflow, dtypes and bad input."""
import warnings

import numpy as np
import pytest

from minicnn import LeakyReLU, ReLU, Sigmoid, Tanh
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("layer, f, df", [
    (LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1, 0.01)),
    (LeakyReLU(-0.5), lambda x: np.where(x > 0, x, -0.5 * x), lambda x: np.where(x > 0, 1, -0.5)),
    (Tanh(), np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    (Sigmoid(), lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
])
def test_values_and_derivatives(layer, f, df):
    x = distinct_values((2, 3, 4, 5), np.random.default_rng(0), 0.1)
    for inp in (x, channels_last(x)):
        np.testing.assert_allclose(layer.forward(inp), f(x), rtol=1e-12, atol=1e-15)
        dout = np.random.default_rng(1).standard_normal(x.shape)
        np.testing.assert_allclose(layer.backward(dout), dout * df(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("layer", [LeakyReLU(0.2), Tanh(), Sigmoid()])
def test_gradients(layer):
    rng = np.random.default_rng(2)
    assert check_layer(layer, distinct_values((3, 2, 4, 5), rng, 0.1), rng=rng)["dx"] < LAYER_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_large_inputs(dtype):
    x = np.array([[-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            layer = Sigmoid()
            out = layer.forward(x)
            dx = layer.backward(np.ones_like(x))
    assert out.dtype == dtype and np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    assert out[0, 0] == 0 and out[0, -1] == 1 and out[0, 3] == 0.5
    np.testing.assert_allclose(out[0, 2], 1 / (1 + np.exp(30.0)), rtol=1e-6)   # small values keep their digits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [LeakyReLU, Tanh, Sigmoid, ReLU])
def test_dtype_and_training_attribute(make, dtype):
    layer = make()
    assert layer.training is True and layer.params == {}
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(dtype)
    out = layer.forward(x)
    assert out.dtype == dtype and layer.backward(np.ones_like(out)).dtype == dtype
    assert layer.backward(np.ones_like(out), need_dx=False) is None


@pytest.mark.parametrize("make", [LeakyReLU, Tanh, Sigmoid])
def test_bad_input(make):
    with pytest.raises(ValueError, match=f"{make.__name__} expected a floating-point NumPy array, got int64"):
        make().forward(np.zeros(3, np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        make().backward(np.zeros(3))


def test_bad_slope():
    with pytest.raises(ValueError, match="negative_slope must be a finite number, got 'a'"):
        LeakyReLU("a")
