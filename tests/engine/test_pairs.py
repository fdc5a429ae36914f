"""A batch norm and the 2x2 max-pool after it as one operation (minicnn.engine.pairs): the fast engine's two
functions apart, to the last bit, and the textbook's within rounding."""
import numpy as np
import pytest

from minicnn.engine import normalization, pairs, pool, threads
from minicnn.engine.buffers import buffer
from minicnn.nn import textbook


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.fixture(params=["whole", "chunks-of-one-image-on-3-threads"])
def chunking(request, monkeypatch):
    """As they run, and with every chunk one image and the images shared out between 3 threads."""
    previous = threads.threads()
    if request.param != "whole":
        for name in ("CHUNK_NUMBERS", "CHUNK_NUMBERS_IN_PART", "MIN_PART"):
            monkeypatch.setattr(threads, name, 1)
        threads.set_threads(3)
    yield request.param
    threads.set_threads(previous)


def _case(shape, dtype, rng, layout="channels_last"):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    C = shape[1]
    gamma, beta = (rng.standard_normal(C) + 1).astype(dtype), rng.standard_normal(C).astype(dtype)
    running = rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)
    return (channels_last(x) if layout == "channels_last" else x), gamma, beta, running


def _dirty_buffers(shape, dtype):
    """NaN in the pooled buffers of x's shape that the next call gets: a value it does not write shows."""
    N, C, H, W = shape
    held = [buffer(f"dirt{k}", (N, H, W, C), dtype) for k in range(4)] + [buffer(f"dirt{k}", shape, dtype) for k in range(4)]
    for a in held:
        a.fill(np.nan)


def _apart(x, gamma, beta, running, training, kernel, stride):
    y, rm, rv, norm = normalization.batchnorm_forward(x, gamma, beta, *running, training, 0.1, 1e-5)
    out, pooled = pool.maxpool2d_forward(y, kernel, stride)
    return out, rm, rv, (norm, pooled)


def _backward_apart(dout, cache, need_dx):
    norm, pooled = cache
    return normalization.batchnorm_backward(pool.maxpool2d_backward(dout, pooled), norm, need_dx)


@pytest.mark.parametrize("shape,kernel,stride,layout", [
    ((6, 3, 8, 10), (2, 2), (2, 2), "channels_last"),       # the fused passes
    ((5, 2, 7, 9), (2, 2), (2, 2), "channels_last"),        # a last row and column no window reaches
    ((4, 3, 8, 8), (2, 2), (2, 2), "nchw"),                 # not channels-last: the two in turn
    ((4, 2, 9, 9), (3, 3), (2, 2), "channels_last"),        # another pool: the two in turn
])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_pair_gives_the_two_functions_numbers_to_the_last_bit(chunking, shape, kernel, stride, layout, training,
                                                                   dtype):
    rng = np.random.default_rng(0)
    x, gamma, beta, running = _case(shape, dtype, rng, layout)
    got = pairs.batchnorm_maxpool2d_forward(x, gamma, beta, *running, training, 0.1, 1e-5, kernel, stride)
    want = _apart(x, gamma, beta, running, training, kernel, stride)
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(a, b)
    assert got[0].strides == want[0].strides                         # in x's memory layout
    dout = channels_last(rng.standard_normal(got[0].shape).astype(dtype))
    for need_dx in (True, False):
        _dirty_buffers(shape, dtype)
        grads = pairs.batchnorm_maxpool2d_backward(dout, got[3], need_dx)
        expected = _backward_apart(dout, want[3], need_dx)
        assert (grads[0] is None) == (not need_dx)
        for a, b in zip(grads, expected):
            if b is not None:
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("training", [True, False])
def test_the_pair_agrees_with_the_textbook(chunking, training):
    rng = np.random.default_rng(1)
    x, gamma, beta, running = _case((7, 3, 6, 8), np.float64, rng)
    got = pairs.batchnorm_maxpool2d_forward(x, gamma, beta, *running, training, 0.1, 1e-5, (2, 2), (2, 2))
    want = textbook.batchnorm_maxpool2d_forward(x, gamma, beta, *running, training, 0.1, 1e-5, (2, 2), (2, 2))
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(got[0].shape)
    for a, b in zip(pairs.batchnorm_maxpool2d_backward(dout, got[3], True),
                    textbook.batchnorm_maxpool2d_backward(dout, want[3], True)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_tie_between_columns_goes_to_the_first_maximum_as_in_the_pool_alone():
    # Integers make ties in most windows, in both rows and columns; gamma 1, beta 0: the output keeps them.
    rng = np.random.default_rng(2)
    x = channels_last(rng.integers(-2, 3, size=(4, 2, 6, 6)).astype(np.float64))
    gamma, beta, running = np.ones(2), np.zeros(2), (np.zeros(2), np.ones(2))
    got = pairs.batchnorm_maxpool2d_forward(x, gamma, beta, *running, False, 0.1, 0.0, (2, 2), (2, 2))
    want = _apart(x, gamma, beta, running, False, (2, 2), (2, 2))
    np.testing.assert_array_equal(got[3][1].winner, want[3][1].winner)
    np.testing.assert_array_equal(got[3][1].down, want[3][1].down)
