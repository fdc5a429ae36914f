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
