"""The fast max-pool and average pools (minicnn.engine.pool) against the loops of minicnn.nn.reference, on both layouts."""
import numpy as np
import pytest

from minicnn.nn import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values
from minicnn.nn.reference import avgpool2d_backward_naive, avgpool2d_naive, maxpool2d_backward_naive, maxpool2d_naive


def channels_last(x):
    """The same values as x, stored (N, H, W, C) in memory: what the layers pass each other."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


POOL_CASES = [(2, None, (2, 3, 8, 6)), (2, None, (2, 3, 7, 9)), (3, None, (1, 2, 9, 7)), (2, 3, (2, 2, 8, 8)),
              (3, 2, (2, 2, 7, 8)), (3, 1, (1, 3, 5, 6)), ((2, 3), (1, 2), (2, 1, 5, 7)), (1, None, (2, 2, 3, 4)),
              ((1, 2), (1, 2), (1, 3, 4, 6))]


@pytest.mark.parametrize("kernel,stride,shape", POOL_CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_maxpool_matches_loops_and_first_max_rule(kernel, stride, shape, layout, values):
    rng = np.random.default_rng(4)
    x = distinct_values(shape, rng) if values == "distinct" else rng.integers(0, 3, size=shape).astype(np.float64)
    layer = MaxPool2D(kernel, stride)
    out = layer.forward(channels_last(x) if layout == "channels_last" else x)
    np.testing.assert_array_equal(out, maxpool2d_naive(x, kernel, stride)[0])
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(channels_last(dout) if layout == "channels_last" else dout)
    # exact where windows do not overlap; overlapping ones add in another order
    np.testing.assert_allclose(dx, maxpool2d_backward_naive(x, dout, kernel, stride), rtol=0, atol=1e-12)


def test_maxpool_2x2_ties_route_to_first_position_in_every_pattern():
    # All 16 patterns of a 2x2 window with values in {0, 1}: the gradient goes to the first maximum in row-major order.
    patterns = np.array([[(p >> 3) & 1, (p >> 2) & 1, (p >> 1) & 1, p & 1] for p in range(16)], dtype=np.float32)
    x = patterns.reshape(16, 1, 2, 2)
    layer = MaxPool2D(2)
    layer.forward(x)
    dx = layer.backward(np.ones((16, 1, 1, 1), np.float32)).reshape(16, 4)
    np.testing.assert_array_equal(dx.argmax(axis=1), patterns.argmax(axis=1))
    np.testing.assert_array_equal(dx.sum(axis=1), np.ones(16))


def test_maxpool_2x2_ties_in_one_chunk_of_many():
    # Ties are looked for chunk by chunk (most chunks of real numbers have none): a tie in one image of a batch
    # that spans several chunks still routes to the first maximum, and the distinct images around it are exact.
    rng = np.random.default_rng(8)
    x = distinct_values((24, 16, 28, 28), rng).astype(np.float32)
    x[21, 5, 10:12, 6:8] = [[0.5, 2.0], [2.0, 1.0]]        # top-right and bottom-left tie: top-right wins
    x[22, 2, 0:2, 0:2] = [[-1.0, -3.0], [-2.0, -1.0]]      # top-left and bottom-right tie: top-left wins
    layer = MaxPool2D(2)
    out = layer.forward(channels_last(x))
    np.testing.assert_array_equal(out, maxpool2d_naive(x, 2, None)[0])
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(channels_last(dout))
    np.testing.assert_array_equal(dx, maxpool2d_backward_naive(x, dout, 2, None))
    assert dx[21, 5, 10, 7] == dout[21, 5, 5, 3] and dx[21, 5, 11, 6] == 0
    assert dx[22, 2, 0, 0] == dout[22, 2, 0, 0] and dx[22, 2, 1, 1] == 0


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (2, 3)])
def test_maxpool_gradient_check(kernel, stride):
    rng = np.random.default_rng(5)
    errors = check_layer(MaxPool2D(kernel, stride), distinct_values((2, 3, 7, 8), rng), rng=rng)
    assert errors["dx"] < LAYER_TOL


AVG_CASES = [(2, None, 0, (2, 3, 8, 6)), (2, None, 0, (2, 3, 7, 9)), (3, 2, 1, (2, 2, 7, 8)), (3, 1, 1, (1, 3, 5, 6)),
             ((2, 3), (1, 2), (1, 1), (2, 1, 5, 7)), (1, None, 0, (2, 2, 3, 4)), (2, 3, 1, (1, 3, 6, 7))]


@pytest.mark.parametrize("kernel,stride,padding,shape", AVG_CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_avgpool_matches_loops_on_both_layouts(kernel, stride, padding, shape, layout):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    layer = AvgPool2D(kernel, stride, padding)
    inp = channels_last(x) if layout == "channels_last" else x
    out = layer.forward(inp)
    np.testing.assert_allclose(out, avgpool2d_naive(x, kernel, stride, padding), rtol=0, atol=1e-14)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(channels_last(dout) if layout == "channels_last" else dout)
    np.testing.assert_allclose(dx, avgpool2d_backward_naive(x, dout, kernel, stride, padding), rtol=0, atol=1e-14)
    assert dx.strides == inp.strides


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_global_avgpool_matches_loops_and_keeps_the_layout(layout):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 4, 7))
    inp = channels_last(x) if layout == "channels_last" else x
    layer = GlobalAvgPool2D()
    np.testing.assert_allclose(layer.forward(inp), avgpool2d_naive(x, (4, 7))[:, :, 0, 0], rtol=0, atol=1e-14)
    dout = rng.standard_normal((3, 5))
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, avgpool2d_backward_naive(x, dout[:, :, None, None], (4, 7)), rtol=0, atol=1e-15)
    assert dx.strides == inp.strides
