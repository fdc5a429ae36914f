"""MaxPool2D: forward and backward against the loops of minicnn.nn.reference, ties, gradients."""
import numpy as np
import pytest

from minicnn import MaxPool2D
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values
from minicnn.nn.reference import maxpool2d_backward_naive, maxpool2d_naive

pytestmark = pytest.mark.usefixtures("engine")   # every test on both engines (tests/nn/conftest.py)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (3, 1), ((2, 3), (1, 2)), (1, None), ((3, 2), (2, 3))])
@pytest.mark.parametrize("shape", [(1, 1, 6, 6), (3, 2, 7, 9), (2, 3, 5, 4)])
def test_maxpool_forward_and_backward_match_reference(kernel, stride, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    layer = MaxPool2D(kernel, stride)
    out = layer.forward(x)
    expected, _ = maxpool2d_naive(x, kernel, stride)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), maxpool2d_backward_naive(x, dout, kernel, stride), atol=1e-12)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (3, 1)])
def test_maxpool_ties_go_to_the_first_maximum(kernel, stride):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)  # many ties
    layer = MaxPool2D(kernel, stride)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, maxpool2d_backward_naive(x, dout, kernel, stride), atol=1e-12)
    x_const = np.ones((1, 1, 2, 2))
    pool = MaxPool2D(2)
    pool.forward(x_const)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("kernel,stride,shape", [(2, None, (2, 3, 6, 4)), (3, 2, (2, 2, 7, 8)), ((2, 3), (1, 2), (3, 1, 5, 7))])
def test_maxpool_gradients(kernel, stride, shape):
    rng = np.random.default_rng(5)
    errors = check_layer(MaxPool2D(kernel, stride), distinct_values(shape, rng), rng=rng)
    assert errors["dx"] < LAYER_TOL
