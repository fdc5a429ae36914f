"""The fast paths of Conv2D, MaxPool2D and ReLU against the textbook loops of minicnn.reference.

Conv2D has two engines (minicnn.im2col, "Fast paths"): stride-1 convolutions with
enough input channels run as shifted matrix products, everything else through a
channels-last im2col.  Every case below runs through both, forced by
``SHIFTED_MIN_CHANNELS``.  Layers also hand activations on as channels-last
views, so each layer is checked on both memory layouts, and the reuse of
internal buffers is checked to never touch an array the caller still holds.
"""
import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from tolerances import assert_close, product_tolerance, sum_tolerance

import minicnn.engine.conv as fast_conv
from minicnn.engine.blas import column_sums, gemm
from minicnn.nn import Conv2D, Flatten, MaxPool2D, ReLU
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values
from minicnn.nn.reference import conv2d_backward_naive, conv2d_naive, maxpool2d_backward_naive, maxpool2d_naive

REPO = Path(__file__).resolve().parents[1]


def channels_last(x):
    """The same values as x, stored (N, H, W, C) in memory: what the layers pass each other."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.fixture(params=["shifted", "im2col"])
def engine(request, monkeypatch):
    """Run the test once with every stride-1 conv on shifted products, once with all on im2col."""
    monkeypatch.setattr(fast_conv, "WIDTH_WINDOW_MIN_CHANNELS", 1 if request.param == "shifted" else 10**9)
    return request.param


# (C, F, kernel, stride, padding, (H, W)): odd sizes, 1 channel, 1x1, even and non-square kernels, big strides.
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


# -- MaxPool2D ----------------------------------------------------------------------------------

# kernel, stride, shape: 2x2/2 tiled (the REF-CNN case) and on odd sizes, stride > kernel, overlap, 1x1, non-square.
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


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (2, 3)])
def test_maxpool_gradient_check(kernel, stride):
    rng = np.random.default_rng(5)
    errors = check_layer(MaxPool2D(kernel, stride), distinct_values((2, 3, 7, 8), rng), rng=rng)
    assert errors["dx"] < LAYER_TOL


def test_flatten_hands_dx_back_in_the_layout_of_x():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 4, 5))
    for inp in (x, channels_last(x)):
        layer = Flatten()
        out = layer.forward(inp)
        np.testing.assert_array_equal(out, x.reshape(2, -1))      # C order, whatever the memory layout
        dx = layer.backward(out * 2)
        np.testing.assert_array_equal(dx, 2 * x)
        assert dx.strides == inp.strides


def test_relu_on_both_layouts_and_dtypes():
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        for inp in (x, channels_last(x)):
            layer = ReLU()
            out = layer.forward(inp)
            dx = layer.backward(np.ones_like(x))
            assert out.dtype == dtype and dx.dtype == dtype
            np.testing.assert_array_equal(out, np.where(x > 0, x, 0))
            np.testing.assert_array_equal(dx, (x > 0).astype(dtype))


# -- reused buffers ---------------------------------------------------------------------------

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


# -- helpers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
def test_gemm_matches_matmul_for_every_operand_order(dtype, a_order, b_order):
    rng = np.random.default_rng(11)
    a = np.asarray(rng.standard_normal((7, 5)), dtype=dtype, order=a_order)
    b = np.asarray(rng.standard_normal((5, 3)), dtype=dtype, order=b_order)
    out = np.full((7, 3), np.nan, dtype)
    assert gemm(a, b, out) is out
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_close(out, a64 @ b64, product_tolerance(a, b, 5))
    gemm(a, b, out, accumulate=True)                               # 2 x 5 terms of at most max|a| max|b|
    assert_close(out, 2 * (a64 @ b64), product_tolerance(a, b, 2 * 5))
    gemm(a[:, ::2], b[::2], out)                                   # non-contiguous operands are copied
    assert_close(out, a64[:, ::2] @ b64[::2], product_tolerance(a, b, 3))


def test_gemm_and_column_sums_on_empty_and_narrow_shapes():
    out = np.ones((0, 3), np.float32)
    gemm(np.ones((0, 4), np.float32), np.ones((4, 3), np.float32), out)
    out = np.ones((2, 3), np.float32)
    gemm(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32), out)
    np.testing.assert_array_equal(out, 0)
    m = np.random.default_rng(12).standard_normal((1000, 7)).astype(np.float32)
    m64 = m.astype(np.float64)
    # a column can nearly cancel (one sums to -0.53 from terms of size ~800): the error follows sum |m|
    assert_close(column_sums(m, {}), m64.sum(axis=0), sum_tolerance(np.abs(m64).sum(axis=0), np.float32))
    assert_close(column_sums(m[:, ::2], {}), m64[:, ::2].sum(axis=0),
                 sum_tolerance(np.abs(m64[:, ::2]).sum(axis=0), np.float32))


# -- the benchmark's smoke test (no timing asserted) ------------------------------------------

def test_benchmark_quick_mode_writes_every_section(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "experiments" / "benchmark.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = tmp_path / "bench.json"
    assert script.main(["--quick", "--threads", "1", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    for key in ("machine", "versions", "threads", "sgemm_gflops", "naive_vs_conv", "layers", "training", "peak_rss_mb"):
        assert key in result, key
    assert result["threads"] == 1
    assert {row["batch"] for row in result["naive_vs_conv"]} == {1, 64}
    assert {row["layer"] for row in result["layers"]} == {"Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"}
    assert all(row["images_per_s"] > 0 for row in result["training"])
    assert result["peak_rss_mb"]["minicnn"]["peak_rss_mb"] > 0
    assert result["torch"] == {"available": result["torch"]["available"], "requested": False}
