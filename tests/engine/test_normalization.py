"""The fast batch norm (minicnn.engine.normalization) against the loops of minicnn.nn.reference and the textbook math."""
import numpy as np
import pytest

from minicnn.nn import BatchNorm1D, BatchNorm2D, use_engine
from minicnn.nn.gradcheck import _randomised
from minicnn.nn.reference import batchnorm_naive
from tests.tolerances import assert_close, sum_tolerance


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


CASES = [(shape, layout) for shape in [(3, 5, 7, 3), (1, 3, 2, 9), (5, 1, 3, 3)] for layout in ("nchw", "channels_last")]
CASES.append(((9, 4), "nchw"))                                   # (N, D) has one layout


@pytest.mark.parametrize("shape,layout", CASES)
@pytest.mark.parametrize("training", [True, False])
def test_fast_batchnorm_matches_loops_and_textbook(shape, layout, training):
    rng = np.random.default_rng(0)
    x = 1 + 2 * rng.standard_normal(shape)
    inp = channels_last(x) if layout == "channels_last" else x
    results = {}
    for engine in ("fast", "textbook"):
        layer = _randomised((BatchNorm2D if len(shape) == 4 else BatchNorm1D)(shape[1], dtype=np.float64),
                            np.random.default_rng(1), training)
        stats = layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy()
        with use_engine(engine):
            out = layer.forward(inp)
            dout = np.random.default_rng(2).standard_normal(shape)
            dx = layer.backward(channels_last(dout) if layout == "channels_last" else dout)
        results[engine] = out, dx, dict(layer.grads), dict(layer.buffers), out.strides
    expected = batchnorm_naive(x, layer.params["gamma"], layer.params["beta"], 1e-5, *(() if training else stats))[0]
    out, dx, grads, buffers, strides = results["fast"]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert strides == inp.strides or shape[1] == 1                            # the layout is kept
    for a, b in zip(results["fast"][1:4], results["textbook"][1:4]):
        for k in (b if isinstance(b, dict) else {"dx": b}):
            np.testing.assert_allclose(a[k] if isinstance(a, dict) else a, b[k] if isinstance(b, dict) else b,
                                       rtol=0, atol=1e-12)


def test_fast_batchnorm_float32_stays_within_rounding():
    rng = np.random.default_rng(3)
    x = (3 + rng.standard_normal((16, 8, 14, 14))).astype(np.float32)
    layer = BatchNorm2D(8)
    out = layer.forward(channels_last(x))
    expected, mean, var = batchnorm_naive(x.astype(np.float64), np.ones(8), np.zeros(8))
    n = 16 * 14 * 14
    # the statistics are sums of n terms; the normalised values carry their error divided by sigma
    tol = sum_tolerance(n * np.abs(x.astype(np.float64)).max(), np.float32) / n / np.sqrt(var.min()) * 4
    assert_close(out, expected, tol)
    assert out.dtype == np.float32


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layouts", [("channels_last", "nchw"), ("nchw", "channels_last")])
def test_fast_batchnorm_takes_dout_in_another_layout_than_x(training, layouts):
    rng = np.random.default_rng(6)
    shape = (4, 3, 5, 6)
    x, dout = 2 + rng.standard_normal(shape), rng.standard_normal(shape)
    as_layout = lambda a, layout: channels_last(a) if layout == "channels_last" else np.ascontiguousarray(a)
    results = {}
    for engine in ("fast", "textbook"):
        layer = _randomised(BatchNorm2D(3, dtype=np.float64), np.random.default_rng(1), training)
        with use_engine(engine):
            out = layer.forward(as_layout(x, layouts[0]))
            dx = layer.backward(as_layout(dout, layouts[1]))
        results[engine] = [out, dx, *layer.grads.values(), *layer.buffers.values()]
    for a, b in zip(results["fast"], results["textbook"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_fast_batchnorm_over_many_chunks_matches_the_textbook(monkeypatch, training):
    # chunks of 2 images (the last one shorter): the chunks' moments are combined exactly
    from minicnn.engine import threads
    shape = (7, 3, 5, 6)
    monkeypatch.setattr(threads, "CHUNK_NUMBERS", 2 * 2 * 3 * 5 * 6)
    monkeypatch.setattr(threads, "CHUNK_NUMBERS_IN_PART", 2 * 2 * 3 * 5 * 6)
    rng = np.random.default_rng(4)
    x = channels_last(5 + 3 * rng.standard_normal(shape))
    dout = channels_last(rng.standard_normal(shape))
    results = {}
    for engine in ("fast", "textbook"):
        layer = _randomised(BatchNorm2D(3, dtype=np.float64), np.random.default_rng(1), training)
        with use_engine(engine):
            out = layer.forward(x)
            dx = layer.backward(dout)
        results[engine] = [out, dx, *layer.grads.values(), *layer.buffers.values()]
    for a, b in zip(results["fast"], results["textbook"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_fast_batchnorm_float32_variance_far_from_zero_does_not_cancel(monkeypatch):
    # mean 1000, variance about 1: E[x^2] - E[x]^2 in float32 would be off by about 1e6 * eps = 0.06 or more
    from minicnn.engine import threads
    monkeypatch.setattr(threads, "CHUNK_NUMBERS", 2 * 3 * 4 * 9 * 9)   # chunks of 3 images, 11 of them
    rng = np.random.default_rng(5)
    x = (1000 + rng.standard_normal((32, 4, 9, 9))).astype(np.float32)
    layer = BatchNorm2D(4, momentum=1.0)
    layer.forward(channels_last(x))
    x64 = x.astype(np.float64)
    n = x[:, 0].size
    var = x64.var(axis=(0, 2, 3), ddof=1)
    mean_error = sum_tolerance(n * np.abs(x64).max(), np.float32) / n          # of the float32 means (whole or a chunk's)
    spread = np.abs(x64 - x64.mean(axis=(0, 2, 3), keepdims=True)).max()
    # second order in the means' error but for the chunks' gaps to the mean: 2 * |gap| * (both means' error) a term
    tol = 4 * mean_error * spread + sum_tolerance(var * n / (n - 1), np.float32)
    assert_close(layer.buffers["running_var"], var, tol)
    assert tol.max() < 0.02
    np.testing.assert_allclose(layer.buffers["running_mean"], x64.mean(axis=(0, 2, 3)), rtol=0, atol=mean_error.max())



def test_fast_batchnorm_float32_backward_far_from_zero_stays_within_its_bound():
    # The backward takes x, not x - mean: dgamma = inv_std * (sum(dout * x) - mean * sum(dout)) and
    # dx = scale * (dout - k * x + (k * mean - dbeta / n)).  Their rounding is that of eps * |x| an entry,
    # relative to the spread: rho = eps * max|x| * inv_std, the same as x's own rounding carries into any formula.
    rng = np.random.default_rng(7)
    x = (1000 + rng.standard_normal((32, 4, 9, 9))).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    results = {}
    for dtype, engine in ((np.float32, "fast"), (np.float64, "textbook")):
        layer = BatchNorm2D(4, dtype=dtype)
        layer.params["gamma"][:] = [1, -2, 0.5, 3]
        with use_engine(engine):
            layer.forward(channels_last(x.astype(dtype)))
            dx = layer.backward(channels_last(dout.astype(dtype)))
        results[engine] = dx, layer.grads["gamma"], layer.grads["beta"]
    (dx, dgamma, dbeta), (dx64, dgamma64, dbeta64) = results["fast"], results["textbook"]
    x64, d64, axes = x.astype(np.float64), dout.astype(np.float64), (0, 2, 3)
    inv_std = 1 / np.sqrt(x64.var(axis=axes) + 1e-5)
    rho = float(np.finfo(np.float32).eps) * np.abs(x64).max() * inv_std              # (C,), about 1.2e-4 here
    sum_d = np.abs(d64).sum(axis=axes)
    assert_close(dbeta, dbeta64, sum_tolerance(sum_d, np.float32))
    assert_close(dgamma, dgamma64, 4 * rho * sum_d)
    scale = np.abs(layer.params["gamma"].astype(np.float64)) * inv_std
    per_channel = 4 * scale * (rho * np.abs(d64).max(axis=axes) + rho * sum_d / x[:, 0].size)
    assert_close(dx, dx64, per_channel[None, :, None, None])
    assert rho.max() < 2e-4
