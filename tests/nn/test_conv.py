"""Conv2D: forward against the loops of minicnn.nn.reference and the chapters' worked examples, gradients, bad input."""
import itertools

import numpy as np
import pytest

from minicnn import Conv2D
from minicnn.nn.gradcheck import LAYER_TOL, check_layer
from minicnn.nn.reference import conv2d_naive

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)

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
