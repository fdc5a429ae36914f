"""MaxPool2D, AvgPool2D, GlobalAvgPool2D: forward and backward against the loops of minicnn.nn.reference, ties, gradients."""
import numpy as np
import pytest

from minicnn import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values
from minicnn.nn.reference import avgpool2d_backward_naive, avgpool2d_naive, maxpool2d_backward_naive, maxpool2d_naive

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


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


AVG_CASES = [(2, None, 0, (1, 1, 6, 6)), (3, 2, 1, (3, 2, 7, 9)), (3, 1, 1, (2, 3, 5, 4)), ((2, 3), (1, 2), (1, 1), (2, 2, 5, 7)),
             (1, None, 0, (2, 2, 3, 4)), (2, 3, 0, (2, 1, 8, 7)), ((3, 2), (2, 3), (0, 1), (1, 2, 7, 8))]


@pytest.mark.parametrize("kernel,stride,padding,shape", AVG_CASES)
def test_avgpool_forward_and_backward_match_reference(kernel, stride, padding, shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    layer = AvgPool2D(kernel, stride, padding)
    out = layer.forward(x)
    np.testing.assert_allclose(out, avgpool2d_naive(x, kernel, stride, padding), rtol=0, atol=1e-14)
    assert out.shape == x.shape[:1] + layer.output_shape(x.shape[1:])
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), avgpool2d_backward_naive(x, dout, kernel, stride, padding), atol=1e-14)


def test_avgpool_counts_the_padding_zeros():
    out = AvgPool2D(2, padding=1).forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(out[0, 0], [[0.25, 0.25], [0.25, 0.25]])


@pytest.mark.parametrize("kernel,stride,padding,shape", [(2, None, 0, (2, 3, 6, 4)), (3, 2, 1, (2, 2, 7, 6)),
                                                         ((2, 3), (1, 2), (1, 1), (1, 2, 5, 7))])
def test_avgpool_gradients(kernel, stride, padding, shape):
    rng = np.random.default_rng(7)
    assert check_layer(AvgPool2D(kernel, stride, padding), rng.standard_normal(shape), rng=rng)["dx"] < LAYER_TOL


def test_global_avgpool():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 5, 2))
    layer = GlobalAvgPool2D()
    out = layer.forward(x)
    np.testing.assert_allclose(out, avgpool2d_naive(x, (5, 2))[:, :, 0, 0], rtol=1e-14)
    assert layer.output_shape((4, 5, 2)) == (4,)
    dout = rng.standard_normal((3, 4))
    np.testing.assert_allclose(layer.backward(dout), avgpool2d_backward_naive(x, dout[:, :, None, None], (5, 2)), rtol=1e-14)
    assert check_layer(GlobalAvgPool2D(), x, rng=rng)["dx"] < LAYER_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pools_keep_the_dtype(dtype):
    x = np.ones((2, 3, 4, 4), dtype)
    for layer in (AvgPool2D(2), AvgPool2D(3, 1, 1), GlobalAvgPool2D(), MaxPool2D(2)):
        assert layer.training is True
        out = layer.forward(x)
        assert out.dtype == dtype and layer.backward(np.ones_like(out)).dtype == dtype


@pytest.mark.parametrize("make, x, message", [
    (lambda: AvgPool2D(2), np.zeros((2, 3, 4)), r"AvgPool2D expected input of shape \(N, C, H, W\) \(4 dimensions\)"),
    (lambda: AvgPool2D(5), np.zeros((1, 1, 4, 4)), r"kernel 5x5 is larger than the padded input 4x4"),
    (lambda: AvgPool2D(2), np.zeros((1, 1, 4, 4), np.int32), "floating-point"),
    (lambda: GlobalAvgPool2D(), np.zeros((2, 3)), r"GlobalAvgPool2D expected input of shape \(N, C, H, W\)"),
])
def test_avg_pools_refuse_bad_input(make, x, message):
    with pytest.raises(ValueError, match=message):
        make().forward(x)


def test_avgpool_refuses_bad_arguments_and_dout():
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size \(2, 2\), got padding \(2, 2\)"):
        AvgPool2D(2, padding=2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        AvgPool2D(2, stride=0)
    layer = AvgPool2D(2)
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 1, 2, 2\), got \(1, 1, 3, 3\)"):
        layer.backward(np.zeros((1, 1, 3, 3)))
