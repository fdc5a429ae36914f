"""Reused buffers (minicnn.engine.buffers) never overwrite an array the caller still holds, and reused ones stay right."""
import copy

import numpy as np

from minicnn.nn import Conv2D, Flatten, MaxPool2D, ReLU
from minicnn.nn.reference import conv2d_naive, maxpool2d_naive
from tests.tolerances import assert_close, sum_tolerance


def _layer_cases(rng):
    yield Conv2D(4, 3, 3, padding=1, rng=rng, dtype=np.float64), (2, 4, 6, 6)     # shifted engine
    yield Conv2D(1, 3, 3, padding=1, rng=rng, dtype=np.float64), (2, 1, 6, 6)     # im2col engine
    yield Conv2D(2, 3, 3, stride=2, rng=rng, dtype=np.float64), (2, 2, 7, 7)      # im2col, strided
    yield ReLU(), (2, 3, 4, 4)
    yield MaxPool2D(2), (2, 3, 6, 6)                                               # 2x2 pairwise path
    yield MaxPool2D(2), (2, 3, 7, 5)                                               # 2x2, edge dropped
    yield MaxPool2D(3, 2), (2, 3, 7, 7)                                            # overlapping windows
    yield Flatten(), (2, 3, 4, 4)


def test_held_outputs_are_never_overwritten_by_later_calls():
    rng = np.random.default_rng(7)
    for layer, shape in _layer_cases(rng):
        x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
        out1 = layer.forward(x1)
        saved_out1 = out1.copy()
        d1 = rng.standard_normal(out1.shape)
        dx1 = layer.backward(d1)
        saved_dx1 = dx1.copy()
        for _ in range(2):                       # later calls, with the first results still held
            out2 = layer.forward(x2)
            dx2 = layer.backward(rng.standard_normal(out2.shape))
        np.testing.assert_array_equal(out1, saved_out1, err_msg=type(layer).__name__)
        np.testing.assert_array_equal(dx1, saved_dx1, err_msg=type(layer).__name__)
        assert not np.shares_memory(out1, out2) and not np.shares_memory(dx1, dx2)
        view = out2[::-1]                        # a view keeps its buffer alive too
        del out2
        out3 = layer.forward(x1)
        assert not np.shares_memory(view, out3)
        np.testing.assert_array_equal(out3, saved_out1)


def test_dropped_outputs_are_reused_and_still_right():
    rng = np.random.default_rng(8)
    for layer, shape in _layer_cases(rng):
        x = rng.standard_normal(shape)
        expected = layer.forward(x).copy()
        for _ in range(3):                        # results dropped at once: buffers may be recycled
            np.testing.assert_array_equal(layer.forward(x), expected)


def test_layer_used_twice_backward_follows_the_last_forward():
    rng = np.random.default_rng(9)
    for layer, shape in _layer_cases(rng):
        x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
        fresh = copy.deepcopy(layer)             # same weights, no buffers used yet
        out = layer.forward(x1)
        layer.forward(x2)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        fresh.forward(x2)
        np.testing.assert_allclose(dx, fresh.backward(dout), rtol=1e-12, atol=1e-12, err_msg=type(layer).__name__)


def test_successive_batch_sizes_and_dtypes_in_one_layer():
    rng = np.random.default_rng(10)
    conv, pool, relu = Conv2D(4, 2, 3, padding=1, rng=rng), MaxPool2D(2), ReLU()
    for N, dtype in [(3, np.float32), (1, np.float32), (5, np.float64), (3, np.float64), (2, np.float32)]:
        x = rng.standard_normal((N, 4, 6, 6)).astype(dtype)
        out = pool.forward(relu.forward(conv.forward(x)))
        W64, b64 = conv.params["W"].astype(np.float64), conv.params["b"].astype(np.float64)
        expected = maxpool2d_naive(np.maximum(conv2d_naive(x.astype(np.float64), W64, b64, 1, 1), 0), 2)[0]
        abs_sum = conv2d_naive(np.abs(x.astype(np.float64)), np.abs(W64), np.abs(b64), 1, 1)
        assert out.dtype == dtype and out.shape == (N, 2, 3, 3)
        # ReLU and max move no value by more than the largest error in the window
        assert_close(out, expected, maxpool2d_naive(sum_tolerance(abs_sum, dtype), 2)[0], err_msg=str(dtype))
        dx = conv.backward(relu.backward(pool.backward(np.ones_like(out))))
        assert dx.dtype == dtype and dx.shape == x.shape


def test_the_pool_hands_out_only_what_nobody_holds():
    from minicnn.engine import buffers
    buffers.clear()
    a = buffers.buffer("test.a", (3, 4), np.float32)
    b = buffers.buffer("test.a", (3, 4), np.float32)
    assert a is not b                                        # a is held: b is another array
    view = b[1:]
    del b
    c = buffers.buffer("test.a", (3, 4), np.float32)
    assert c is not view.base and c is not a                 # a view holds its buffer too
    a_id, c_id = id(a), id(c)
    del a, c
    assert id(buffers.buffer("test.a", (3, 4), np.float32)) == c_id     # let go: the one handed out last first
    assert id(buffers.buffer("test.a", (3, 4), np.float32)) == c_id     # (dropped at once: the same again)
    held = buffers.buffer("test.a", (3, 4), np.float32)
    assert id(held) == c_id and id(buffers.buffer("test.a", (3, 4), np.float32)) == a_id   # then the next free one
    z = buffers.buffer("test.z", (2, 5), np.float64, zeros=True, tag=(1, 1))
    z[:, 1:4] = 7                                            # a caller writes only its middle
    del z
    other = buffers.buffer("test.z", (2, 5), np.float64, zeros=True, tag=(2, 0))
    assert not other.any()                                   # another tag: a border of its own, still zero


def test_arrays_of_one_layout_are_shared_across_names_unless_their_contents_are_kept():
    from minicnn.engine import buffers
    buffers.clear()
    out = buffers.buffer("test.out", (4, 6), np.float32)
    out_id = id(out)
    del out
    assert id(buffers.buffer("test.dx", (4, 6), np.float32)) == out_id             # free: any name takes it
    like = np.empty((4, 6), np.float32)
    assert id(buffers.buffer_like("test.like", like)) == out_id                    # the same layout by buffer_like
    channels_last = np.empty((2, 3, 4, 5), np.float32).transpose(0, 3, 1, 2)
    cl = buffers.buffer_like("test.cl", channels_last)
    assert cl.strides == np.empty_like(channels_last).strides
    cl_id = id(cl)
    del cl
    plain = buffers.buffer("test.plain", channels_last.shape, np.float32)          # same shape, C order: not it
    assert id(plain) != cl_id and plain.flags.c_contiguous
    assert id(buffers.buffer_like("test.cl2", channels_last)) == cl_id
    assert buffers.buffer("test.int", (4, 6), np.int32).dtype == np.int32          # another dtype: its own
    border = buffers.buffer("test.border", (4, 6), np.float32, zeros=True, tag=(1,))
    border[1:3] = 5
    border_id = id(border)
    del border
    assert id(buffers.buffer("test.any", (4, 6), np.float32)) != border_id         # kept contents: never shared
    assert id(buffers.buffer("test.other", (4, 6), np.float32, zeros=True, tag=(1,))) != border_id
    again = buffers.buffer("test.border", (4, 6), np.float32, zeros=True, tag=(1,))
    assert id(again) == border_id and not again[0].any() and (again[1:3] == 5).all()
