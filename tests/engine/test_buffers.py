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


def _address(a):
    return a.__array_interface__["data"][0]


def test_the_pool_hands_out_only_what_nobody_holds():
    from minicnn.engine import buffers
    buffers.clear()
    a = buffers.buffer("test.a", (3, 4), np.float32)
    b = buffers.buffer("test.a", (3, 4), np.float32)
    assert not np.shares_memory(a, b)                        # a is held: b is other memory
    view = b[1:]
    del b
    c = buffers.buffer("test.a", (3, 4), np.float32)
    assert not np.shares_memory(c, view) and not np.shares_memory(c, a)   # a view holds its buffer too
    a_at, c_at = _address(a), _address(c)
    del a, c
    assert _address(buffers.buffer("test.a", (3, 4), np.float32)) == c_at   # let go: the one handed out last first
    assert _address(buffers.buffer("test.a", (3, 4), np.float32)) == c_at   # (dropped at once: the same again)
    held = buffers.buffer("test.a", (3, 4), np.float32)
    assert _address(held) == c_at and _address(buffers.buffer("test.a", (3, 4), np.float32)) == a_at
    z = buffers.buffer("test.z", (2, 5), np.float64, zeros=True, tag=(1, 1))
    z[:, 1:4] = 7                                            # a caller writes only its middle
    del z
    other = buffers.buffer("test.z", (2, 5), np.float64, zeros=True, tag=(2, 0))
    assert not other.any()                                   # another tag: a border of its own, still zero


def test_memory_of_as_many_bytes_is_shared_across_names_unless_its_contents_are_kept():
    from minicnn.engine import buffers
    buffers.clear()
    out = buffers.buffer("test.out", (4, 6), np.float32)
    out_at = _address(out)
    del out
    dx = buffers.buffer("test.dx", (4, 6), np.float32)
    assert _address(dx) == out_at and dx.shape == (4, 6) and dx.flags.c_contiguous   # free: any name takes it
    del dx
    assert _address(buffers.buffer("test.flat", (24,), np.float32)) == out_at        # as many bytes, any shape
    assert _address(buffers.buffer("test.mask", (96,), bool)) == out_at              # or dtype
    assert _address(buffers.buffer_like("test.like", np.empty((2, 12), np.float32))) == out_at
    assert _address(buffers.buffer("test.more", (25,), np.float32)) != out_at        # more bytes: other memory
    channels_last = np.empty((2, 3, 4, 5), np.float32).transpose(0, 3, 1, 2)
    cl = buffers.buffer_like("test.cl", channels_last)
    assert cl.shape == channels_last.shape and cl.strides == np.empty_like(channels_last).strides
    cl_at = _address(cl)
    del cl
    plain = buffers.buffer("test.plain", channels_last.shape, np.float32)          # C order, in the same memory
    assert _address(plain) == cl_at and plain.flags.c_contiguous
    odd = np.empty((4, 6), np.float32)[:, ::2]                                      # not contiguous: like's order
    assert buffers.buffer_like("test.odd", odd).strides == np.empty_like(odd).strides
    border = buffers.buffer("test.border", (4, 6), np.float32, zeros=True, tag=(1,))
    border[1:3] = 5
    border_at = _address(border)
    del border
    assert _address(buffers.buffer("test.any", (4, 6), np.float32)) != border_at    # kept contents: never shared
    assert _address(buffers.buffer("test.other", (4, 6), np.float32, zeros=True, tag=(1,))) != border_at
    again = buffers.buffer("test.border", (4, 6), np.float32, zeros=True, tag=(1,))
    assert _address(again) == border_at and not again[0].any() and (again[1:3] == 5).all()


def test_a_model_whose_arrays_share_pooled_memory_gives_the_bits_of_one_that_reuses_nothing(monkeypatch):
    """Training steps of a batch-norm network, whose conv output, batch norm arrays and pooling dx share memory
    of one size, against the same steps with every array new (the pool reusing nothing)."""
    from minicnn.engine import buffers
    from minicnn.nn import BatchNorm2D, Dense
    from minicnn.nn.losses import softmax_cross_entropy
    from minicnn.nn.model import Sequential
    from minicnn.nn.optim import SGD

    def steps():
        rng = np.random.default_rng(11)
        model = Sequential([Conv2D(1, 4, 3, padding=1, bias=False, rng=rng), BatchNorm2D(4), ReLU(), MaxPool2D(2),
                            Conv2D(4, 4, 3, padding=1, bias=False, rng=rng), BatchNorm2D(4), ReLU(), MaxPool2D(2),
                            Flatten(), Dense(4 * 4 * 4, 10, rng=rng)])
        optimizer = SGD(model, lr=0.1, momentum=0.9)
        x, y = rng.standard_normal((12, 1, 16, 16), dtype=np.float32), rng.integers(0, 10, 12)
        for _ in range(3):
            loss, dlogits = softmax_cross_entropy(model.forward(x), y)
            dx = model.backward(dlogits, need_input_grad=True)
            optimizer.step()
        return [loss, dx] + [p.copy() for _, p, _ in model.parameters()] + [g.copy() for _, _, g in model.parameters()]

    buffers.clear()
    shared = steps()
    sizes = {key[1] for key in buffers._pool if key[0] == "bytes"}
    assert 12 * 4 * 16 * 16 * 4 in sizes          # the first block's arrays of one size went to pooled bytes
    monkeypatch.setattr(buffers, "_UNHELD", None)  # nothing reused: every array new
    fresh = steps()
    for a, b in zip(shared, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
