"""The textbook im2col and col2im: columns are the windows, and col2im is the adjoint."""
import numpy as np
import pytest

from minicnn.nn.im2col import col2im, im2col


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (1, 1), (1, 1, 1, 1)), ((2, 3), (2, 1), (0, 1, 2, 0)),
                                                   ((1, 1), (3, 2), (0, 0, 0, 0)), ((5, 4), (1, 3), (2, 2, 1, 2))])
def test_im2col_columns_are_the_windows(kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))
    cols = im2col(x, kernel, stride, padding)
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    (KH, KW), (SH, SW) = kernel, stride
    H_out, W_out = (xp.shape[2] - KH) // SH + 1, (xp.shape[3] - KW) // SW + 1
    assert cols.shape == (2, 3 * KH * KW, H_out * W_out)
    for y in range(H_out):
        for x_ in range(W_out):
            window = xp[:, :, y * SH:y * SH + KH, x_ * SW:x_ * SW + KW].reshape(2, -1)
            np.testing.assert_array_equal(cols[:, :, y * W_out + x_], window)


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (1, 1), (1, 1, 1, 1)), ((3, 2), (2, 3), (1, 0, 0, 2))])
def test_col2im_is_the_adjoint_of_im2col(kernel, stride, padding):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: col2im sums overlapping windows back.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 6, 7))
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * col2im(c, x.shape, kernel, stride, padding)), rel=1e-12)
