"""The loops of minicnn.nn.reference, the oracle of every other test, checked against hand-worked numbers and finite differences."""
import numpy as np

from minicnn.nn.gradcheck import numerical_gradient, rel_error
from minicnn.nn.reference import conv2d_backward_naive, conv2d_naive, maxpool2d_backward_naive, maxpool2d_naive


def test_conv2d_naive_on_the_5x5_worked_example():
    image = np.array([[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [2, 1, 0, 1, 2], [0, 1, 2, 3, 1]], float)
    kernel = np.array([[1, 0, -1]] * 3, float)
    out = conv2d_naive(image[None, None], kernel[None, None])[0, 0]
    # top-left window: (1 + 0 + 1) - (3 + 2 + 1) = -4, worked by hand
    assert out[0, 0] == -4
    expected = [[sum(image[y + i, x + j] * kernel[i, j] for i in range(3) for j in range(3)) for x in range(3)] for y in range(3)]
    np.testing.assert_array_equal(out, expected)


def test_conv2d_naive_stride_padding_and_bias():
    x = np.arange(16, dtype=float).reshape(1, 1, 4, 4)
    W = np.ones((1, 1, 2, 2))
    out = conv2d_naive(x, W, np.array([10.0]), stride=2, padding=(0, 0))
    np.testing.assert_array_equal(out[0, 0], [[0 + 1 + 4 + 5 + 10, 2 + 3 + 6 + 7 + 10], [8 + 9 + 12 + 13 + 10, 10 + 11 + 14 + 15 + 10]])
    assert conv2d_naive(x, W, padding=1).shape == (1, 1, 5, 5)
    assert conv2d_naive(x, W, padding=(0, 0, 1, 0)).shape == (1, 1, 3, 4)     # (top, bottom, left, right)


def test_conv2d_backward_naive_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 3, 2))
    stride, padding = (2, 1), (1, 0)
    R = rng.standard_normal(conv2d_naive(x, W, stride=stride, padding=padding).shape)
    dx, dW, db = conv2d_backward_naive(x, W, R, stride, padding)
    b = np.zeros(2)
    f = lambda: float(np.sum(conv2d_naive(x, W, b, stride, padding) * R))
    assert rel_error(dx, numerical_gradient(f, x)) < 1e-8
    assert rel_error(dW, numerical_gradient(f, W)) < 1e-8
    assert rel_error(db, numerical_gradient(f, b)) < 1e-8


def test_maxpool_naive_first_maximum_and_backward_routing():
    x = np.array([[[[1, 3, 2, 2], [3, 0, 1, 2], [0, 0, 5, 4], [0, 0, 4, 5]]]], float)
    out, argmax = maxpool2d_naive(x, 2)
    np.testing.assert_array_equal(out[0, 0], [[3, 2], [0, 5]])
    np.testing.assert_array_equal(argmax[0, 0, 0, 0], (0, 1))            # the first 3 in row-major order wins
    dx = maxpool2d_backward_naive(x, np.ones((1, 1, 2, 2)), 2)
    assert dx.sum() == 4 and dx[0, 0, 0, 1] == 1 and dx[0, 0, 1, 0] == 0
