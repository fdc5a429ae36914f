"""Layers: forward against the naive reference and hand-worked examples, float64 gradient checks,
dtype and shape, and a clear ValueError for every bad input."""
import itertools

import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values
from minicnn.nn.reference import conv2d_naive, maxpool2d_backward_naive, maxpool2d_naive

KERNELS = [(1, 1), (3, 3), (5, 5), (2, 3)]
STRIDES = [1, 2, 3]
PADDINGS = [0, 1, 2, "same", "valid"]
IMAGES = [(7, 7), (6, 9)]
SIZES = [(1, 1, 1), (3, 3, 4), (1, 3, 4), (3, 1, 1), (1, 1, 4), (3, 3, 1), (1, 3, 1), (3, 1, 4)]  # (N, C, F)


def _same_pads(k):
    return ((k[0] - 1) // 2, k[0] // 2), ((k[1] - 1) // 2, k[1] // 2)


def _ref_padding(padding, kernel):
    if padding == "same":
        return _same_pads(kernel)
    return 0 if padding == "valid" else padding


CONV_CASES = [
    (size, k, s, p, img)
    for (k, s, p, img), size in zip(itertools.product(KERNELS, STRIDES, PADDINGS, IMAGES), itertools.cycle(SIZES))
    if not (p == "same" and s != 1)
    and not any(d + 2 * (p if isinstance(p, int) else 0) < kk for d, kk in zip(img, k))
]
CONV_CASES += [(size, (3, 3), 2, 1, (6, 9)) for size in SIZES]  # every (N, C, F) on one shape too


@pytest.mark.parametrize("size,kernel,stride,padding,image", CONV_CASES)
def test_conv_forward_matches_reference(size, kernel, stride, padding, image):
    rng = np.random.default_rng(0)
    (N, C, F), (H, W) = size, image
    layer = Conv2D(C, F, kernel, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(F)
    x = rng.standard_normal((N, C, H, W))
    out = layer.forward(x)
    expected = conv2d_naive(x, layer.params["W"], layer.params["b"], stride, _ref_padding(padding, kernel))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_conv_same_padding_keeps_size_with_extra_row_at_bottom_right():
    rng = np.random.default_rng(1)
    layer = Conv2D(1, 1, 4, padding="same", bias=False, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 1, 5, 6))
    out = layer.forward(x)
    assert out.shape == (1, 1, 5, 6)
    expected = conv2d_naive(x, layer.params["W"], None, 1, ((1, 2), (1, 2)))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_worked_example_5x5_vertical_edge_kernel():
    image = np.array([[1, 2, 3, 0, 1],
                      [0, 1, 2, 3, 1],
                      [1, 2, 1, 0, 0],
                      [2, 1, 0, 1, 2],
                      [0, 1, 2, 3, 1]], dtype=np.float32)
    kernel = np.array([[1, 0, -1]] * 3, dtype=np.float32)
    # By hand: each output is (left column sum) - (right column sum) of its 3x3 window.
    # (0,0): (1+0+1) - (3+2+1) = -4   (0,1): (2+1+2) - (0+3+0) = 2    (0,2): (3+2+1) - (1+1+0) = 4
    # (1,0): (0+1+2) - (2+1+0) = 0    (1,1): (1+2+1) - (3+0+1) = 0    (1,2): (2+1+0) - (1+0+2) = 0
    # (2,0): (1+2+0) - (1+0+2) = 0    (2,1): (2+1+1) - (0+1+3) = 0    (2,2): (1+0+2) - (0+2+1) = 0
    expected = np.array([[-4, 2, 4], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    layer = Conv2D(1, 1, 3, rng=np.random.default_rng(0))
    layer.params["W"][0, 0] = kernel
    out = layer.forward(image[None, None])
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(out[0, 0], expected)


def test_worked_example_sobel_x_on_dark_to_bright_edge():
    image = np.zeros((7, 7), dtype=np.float32)
    image[:, 4:] = 1.0  # dark on the left (columns 0-3), bright on the right (4-6)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    layer = Conv2D(1, 1, 3, rng=np.random.default_rng(0))
    layer.params["W"][0, 0] = sobel_x
    out = layer.forward(image[None, None])[0, 0]
    assert out.shape == (5, 5)  # 7 - 3 + 1
    # Output column x sees image columns x..x+2: flat for x in {0, 1} (all dark) and x = 4 (all bright);
    # windows at x = 2 and x = 3 straddle the edge: 1 + 2 + 1 = 4 per row.
    expected = np.zeros((5, 5), dtype=np.float32)
    expected[:, 2:4] = 4.0
    np.testing.assert_array_equal(out, expected)


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


# -- gradient checks (float64, centred differences) ---------------------------------------------

CONV_GRAD_CASES = [
    dict(C=1, F=1, k=3, s=1, p=0, shape=(1, 5, 5)),
    dict(C=3, F=4, k=3, s=1, p=1, shape=(6, 7)),
    dict(C=2, F=3, k=(2, 3), s=2, p=(1, 0), shape=(7, 6)),
    dict(C=2, F=2, k=5, s=3, p=2, shape=(8, 9)),
    dict(C=1, F=2, k=4, s=1, p="same", shape=(5, 4)),
    dict(C=3, F=2, k=1, s=(2, 1), p=0, shape=(5, 6)),
]


@pytest.mark.parametrize("case", CONV_GRAD_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_gradients(case, bias):
    rng = np.random.default_rng(4)
    layer = Conv2D(case["C"], case["F"], case["k"], stride=case["s"], padding=case["p"], bias=bias,
                   rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, case["C"]) + case["shape"][-2:])
    errors = check_layer(layer, x, rng=rng)
    assert set(errors) == {"dx", "W"} | ({"b"} if bias else set())
    assert max(errors.values()) < LAYER_TOL, errors


@pytest.mark.parametrize("kernel,stride,shape", [(2, None, (2, 3, 6, 4)), (3, 2, (2, 2, 7, 8)), ((2, 3), (1, 2), (3, 1, 5, 7))])
def test_maxpool_gradients(kernel, stride, shape):
    rng = np.random.default_rng(5)
    errors = check_layer(MaxPool2D(kernel, stride), distinct_values(shape, rng), rng=rng)
    assert errors["dx"] < LAYER_TOL


def test_relu_dense_flatten_gradients():
    rng = np.random.default_rng(6)
    assert check_layer(ReLU(), distinct_values((3, 2, 4, 5), rng, 0.1), rng=rng)["dx"] < LAYER_TOL
    assert check_layer(Flatten(), rng.standard_normal((3, 2, 3, 4)), rng=rng)["dx"] < LAYER_TOL
    errors = check_layer(Dense(7, 5, rng=rng, dtype=np.float64), rng.standard_normal((4, 7)), rng=rng)
    assert set(errors) == {"dx", "W", "b"} and max(errors.values()) < LAYER_TOL


def test_gradient_check_catches_a_wrong_backward():
    rng = np.random.default_rng(7)
    layer = Conv2D(2, 2, 3, padding=1, rng=rng, dtype=np.float64)
    right = layer.backward
    layer.backward = lambda dout: right(dout) * 1.01  # a 1% mistake in dx
    assert check_layer(layer, rng.standard_normal((2, 2, 5, 5)), rng=rng)["dx"] > 1e-3


# -- dtype, shapes, state -----------------------------------------------------------------------

def _all_layers(dtype):
    rng = np.random.default_rng(8)
    return [(Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype), (2, 2, 6, 6)), (ReLU(), (2, 3, 4, 4)),
            (MaxPool2D(2), (2, 3, 4, 4)), (Flatten(), (2, 3, 2, 2)), (Dense(12, 5, rng=rng, dtype=dtype), (2, 12))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_in_forward_backward_and_grads(dtype):
    rng = np.random.default_rng(9)
    for layer, shape in _all_layers(dtype):
        x = rng.standard_normal(shape).astype(dtype)
        out = layer.forward(x)
        assert out.dtype == dtype, type(layer).__name__
        dx = layer.backward(np.ones_like(out))
        assert dx.dtype == dtype and dx.shape == x.shape, type(layer).__name__
        for name, g in layer.grads.items():
            assert g.dtype == dtype and g.shape == layer.params[name].shape


def test_documented_shapes_and_output_shape():
    rng = np.random.default_rng(10)
    conv = Conv2D(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), rng=rng)
    assert conv.params["W"].shape == (8, 3, 3, 5) and conv.params["b"].shape == (8,)
    out = conv.forward(rng.standard_normal((4, 3, 11, 10)).astype(np.float32))
    assert out.shape == (4, 8, (11 + 2 - 3) // 2 + 1, (10 + 4 - 5) // 1 + 1) == (4,) + conv.output_shape((3, 11, 10))
    dense = Dense(6, 2, rng=rng)
    assert dense.params["W"].shape == (6, 2) and dense.params["b"].shape == (2,)
    pool = MaxPool2D(3, 2)
    assert pool.forward(np.zeros((1, 1, 7, 8), np.float32)).shape == (1, 1, 3, 3) == (1,) + pool.output_shape((1, 7, 8))


def test_he_initialisation_scale_and_reproducibility():
    a = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    b = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert a.params["W"].dtype == np.float32 and not a.params["b"].any()
    assert abs(a.params["W"].std() - np.sqrt(2 / (16 * 9))) < 0.01
    d = Dense(1000, 500, rng=np.random.default_rng(1))
    assert abs(d.params["W"].std() - np.sqrt(2 / 1000)) < 0.002


@pytest.mark.parametrize("make", [lambda: Conv2D(1, 1, 3, rng=np.random.default_rng(0)), ReLU, lambda: MaxPool2D(2),
                                  Flatten, lambda: Dense(3, 2, rng=np.random.default_rng(0))])
def test_backward_before_forward_raises(make):
    with pytest.raises(RuntimeError, match="before forward"):
        make().backward(np.ones((1, 1, 1, 1), np.float32))


# -- bad input ----------------------------------------------------------------------------------

def test_conv_rejects_bad_input_with_a_clear_message():
    conv = Conv2D(3, 2, 3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\).*got shape \(3, 8, 8\)"):
        conv.forward(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(2, 1, 8, 8\).*1 channels instead of 3"):
        conv.forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"kernel 3x3 is larger than the padded input 2x8"):
        conv.forward(np.zeros((1, 3, 2, 8), np.float32))
    with pytest.raises(ValueError, match="floating-point input, got dtype int64"):
        conv.forward(np.zeros((1, 3, 8, 8), np.int64))


@pytest.mark.parametrize("kwargs,message", [
    (dict(kernel_size=0), r"kernel_size must be >= 1, got 0"),
    (dict(kernel_size=(3, 0)), r"kernel_size must be >= 1, got \(3, 0\)"),
    (dict(kernel_size=3, stride=0), r"stride must be >= 1, got 0"),
    (dict(kernel_size=3, padding=-1), r"padding must be >= 0, got -1"),
    (dict(kernel_size=3, stride=2, padding="same"), r"padding='same' needs stride 1, got stride \(2, 2\)"),
    (dict(kernel_size=3, padding="full"), r"padding must be an int, a pair, 'valid' or 'same', got 'full'"),
    (dict(kernel_size=2.5), r"kernel_size must be an int or a pair of ints, got 2.5"),
])
def test_conv_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(1, 1, **kwargs)


def test_other_layers_reject_bad_input():
    with pytest.raises(ValueError, match=r"in_channels must be a positive int, got 0"):
        Conv2D(0, 1, 3)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match=r"stride must be >= 1"):
        MaxPool2D(2, stride=0)
    with pytest.raises(ValueError, match=r"kernel 3x3 is larger than the input 2x5"):
        MaxPool2D(3).forward(np.zeros((1, 1, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) \(4 dimensions\), got shape \(5, 5\)"):
        MaxPool2D(2).forward(np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense expected input of shape \(N, 4\), got \(2, 5\)"):
        Dense(4, 3, rng=np.random.default_rng(0)).forward(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense expected input of shape \(N, 4\) \(2 dimensions\), got shape \(2, 2, 2\)"):
        Dense(4, 3, rng=np.random.default_rng(0)).forward(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator"):
        Dense(4, 3, rng=42)
    with pytest.raises(ValueError, match=r"Flatten expected an array of shape \(N, ...\)"):
        Flatten().forward(np.zeros(3, np.float32))


@pytest.mark.parametrize("make, shape", [
    (lambda rng: Conv2D(1, 3, 3, padding=1, rng=rng), (2, 1, 6, 7)),            # im2col path (C < 4)
    (lambda rng: Conv2D(5, 3, 3, padding=1, rng=rng), (2, 5, 6, 7)),            # shifted-rows path (stride 1, C >= 4)
    (lambda rng: Conv2D(5, 3, (2, 3), stride=2, bias=False, rng=rng), (2, 5, 7, 8)),
    (lambda rng: Dense(6, 4, rng=rng), (3, 6)),
    (lambda rng: ReLU(), (2, 3, 4, 5)),
    (lambda rng: MaxPool2D(2), (2, 3, 4, 6)),
    (lambda rng: MaxPool2D(3, stride=2), (2, 3, 7, 7)),
    (lambda rng: Flatten(), (2, 3, 4, 5)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_without_dx_fills_the_same_grads_and_returns_none(make, shape, dtype):
    rng = np.random.default_rng(3)
    layer = make(rng)
    for name in layer.params:
        layer.params[name] = (layer.params[name] + rng.standard_normal(layer.params[name].shape)).astype(dtype)
        layer.grads[name] = np.zeros_like(layer.params[name])
    x = rng.standard_normal(shape).astype(dtype)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout).copy()
    full = {name: g.copy() for name, g in layer.grads.items()}
    for g in layer.grads.values():
        g.fill(np.nan)
    assert layer.backward(dout, need_dx=False) is None
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(g, full[name])
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(layer.backward(dout, need_dx=True), dx)   # dx again after a backward without it
