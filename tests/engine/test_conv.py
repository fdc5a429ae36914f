"""The fast convolution (minicnn.engine.conv) against the loops of minicnn.nn.reference, through each of its
product paths (width windows and im2col, forced by WIDTH_WINDOW_MIN_CHANNELS) and on both memory layouts."""
import numpy as np
import pytest

import minicnn.engine.conv as fast_conv
from minicnn.engine import threads
from minicnn.nn import Conv2D
from minicnn.nn.gradcheck import LAYER_TOL, check_layer
from minicnn.nn.reference import conv2d_backward_naive, conv2d_naive
from tests.tolerances import assert_close, sum_tolerance


def channels_last(x):
    """The same values as x, stored (N, H, W, C) in memory: what the layers pass each other."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.fixture(params=["shifted", "shifted-blocks-of-7", "shifted-blocks-on-3-threads", "im2col"])
def engine(request, monkeypatch):
    """Run the test with every stride-1 conv on shifted products (in blocks of 7 rows, so that blocks end
    everywhere: inside an image, at the last output row, in the padding; dx a chunk of one image at a time;
    and those blocks and images shared out between 3 threads), once with all on im2col."""
    monkeypatch.setattr(fast_conv, "WIDTH_WINDOW_MIN_CHANNELS", 10**9 if request.param == "im2col" else 1)
    if request.param.startswith("shifted-blocks"):
        monkeypatch.setattr(fast_conv, "ROW_BLOCK", 7)
        monkeypatch.setattr(threads, "CHUNK_NUMBERS", 1)
        monkeypatch.setattr(threads, "CHUNK_NUMBERS_IN_PART", 1)
        monkeypatch.setattr(threads, "MIN_PART", 1)
    previous = threads.threads()
    if request.param == "shifted-blocks-on-3-threads":
        threads.set_threads(3)
    yield request.param
    threads.set_threads(previous)


CONV_CASES = [
    (1, 16, 3, 1, 1, (28, 28)),        # REF-CNN conv1
    (16, 32, 3, 1, 1, (14, 14)),       # REF-CNN conv2
    (1, 2, 3, 1, 0, (5, 7)),
    (3, 4, 5, 1, 2, (9, 6)),
    (5, 3, 1, 1, 0, (4, 5)),
    (4, 3, (2, 3), 1, "same", (7, 5)),
    (2, 3, 4, 1, "same", (6, 6)),
    (6, 2, 3, 2, 1, (9, 8)),
    (3, 2, (3, 2), (2, 3), (0, 2), (11, 7)),
    (2, 5, 3, 3, 0, (3, 3)),
    (4, 4, (1, 3), (1, 2), (1, 0), (5, 8)),
    (2, 3, 3, 1, 3, (4, 5)),           # padding past the kernel's reach: more output rows than input rows
    (3, 2, (3, 7), 1, (1, 3), (5, 2)),  # two columns padded 3 each side: the kernel's first column never sees input
]


@pytest.mark.parametrize("C,F,kernel,stride,padding,size", CONV_CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv_forward_and_backward_match_loops(engine, C, F, kernel, stride, padding, size, layout):
    rng = np.random.default_rng(0)
    N = 2 if C * size[0] * size[1] > 300 else 3
    layer = Conv2D(C, F, kernel, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(F)
    x = rng.standard_normal((N, C) + size)
    out = layer.forward(channels_last(x) if layout == "channels_last" else x)
    pads = layer.padding
    expected = conv2d_naive(x, layer.params["W"], layer.params["b"], layer.stride, ((pads[0], pads[1]), (pads[2], pads[3])))
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(channels_last(dout) if layout == "channels_last" else dout)
    dx_ref, dW_ref, db_ref = conv2d_backward_naive(x, layer.params["W"], dout, layer.stride, pads)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("C,F,kernel,stride,padding", [(1, 3, 3, 1, 1), (4, 2, 3, 1, "same"), (3, 2, (2, 3), 1, 0),
                                                       (2, 2, 3, 2, 1), (5, 2, 1, 1, 0)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_gradient_check_through_each_engine(engine, C, F, kernel, stride, padding, bias):
    rng = np.random.default_rng(1)
    layer = Conv2D(C, F, kernel, stride=stride, padding=padding, bias=bias, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, C, 6, 5)), rng=rng)
    assert max(errors.values()) < LAYER_TOL, errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_dtype_in_is_dtype_out(engine, dtype):
    rng = np.random.default_rng(2)
    for layer_dtype in (np.float32, np.float64):
        layer = Conv2D(4, 3, 3, padding=1, rng=rng, dtype=layer_dtype)
        out = layer.forward(rng.standard_normal((2, 4, 5, 5)).astype(dtype))
        dx = layer.backward(np.ones(out.shape, dtype))
        assert out.dtype == dtype and dx.dtype == dtype
        assert all(g.dtype == np.dtype(layer_dtype) for g in layer.grads.values())


def test_conv_float32_agrees_with_float64(engine):
    rng = np.random.default_rng(3)
    layer = Conv2D(16, 32, 3, padding=1, rng=rng)
    x = rng.standard_normal((4, 16, 14, 14)).astype(np.float32)
    x64, W64 = x.astype(np.float64), layer.params["W"].astype(np.float64)
    expected = conv2d_naive(x64, W64, None, 1, 1)
    tol = sum_tolerance(conv2d_naive(np.abs(x64), np.abs(W64), None, 1, 1), np.float32)  # from sum |x * W|
    assert_close(layer.forward(x), expected, tol)
