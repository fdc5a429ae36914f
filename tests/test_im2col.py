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


@pytest.mark.parametrize("m, n", [(0, 3), (3, 0), (1, 5), (7, 16), (5000, 16), (257, 16), (300, 32), (3, 5000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_rows_writes_the_row_into_every_row(m, n, dtype):
    from minicnn.engine.blas import fill_rows
    row = np.random.default_rng(0).standard_normal(n).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    assert fill_rows(out, row) is out
    np.testing.assert_array_equal(out, np.broadcast_to(row, (m, n)))
    strided = np.full((m, 2 * n), np.nan, dtype)[:, ::2]                 # not contiguous: the plain broadcast
    np.testing.assert_array_equal(fill_rows(strided, row), np.broadcast_to(row, (m, n)))


@pytest.mark.parametrize("C, kernel, stride", [(1, (3, 3), (1, 1)), (1, (2, 3), (2, 1)), (3, (3, 2), (1, 2)), (2, (1, 1), (3, 3))])
def test_im2col_offsets_first_is_the_transpose_of_channels_last(C, kernel, stride):
    from minicnn.engine.windows import im2col_channels_last, im2col_offsets_first
    xp = np.random.default_rng(0).standard_normal((2, 7, 8, C)).astype(np.float32)
    (KH, KW), (SH, SW) = kernel, stride
    H_out, W_out = (7 - KH) // SH + 1, (8 - KW) // SW + 1
    rows = im2col_channels_last(xp, kernel, stride, np.empty((2, H_out, W_out, KH, KW, C), np.float32))
    cols_t = im2col_offsets_first(xp, kernel, stride, np.empty((KH, KW, C, 2, H_out, W_out), np.float32))
    np.testing.assert_array_equal(cols_t, rows.T)


@pytest.mark.parametrize("shape, KW", [((2, 4, 5, 3), 3), ((1, 2, 2, 1), 2), ((2, 3, 4, 4), 1), ((1, 3, 6, 2), 5)])
def test_width_windows_puts_the_kw_neighbours_side_by_side(shape, KW):
    from minicnn.engine.windows import width_windows
    xp = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    C = shape[3]
    rows = xp.reshape(-1, C)
    n = rows.shape[0] - KW + 1
    out = width_windows(xp, KW, np.full((n, KW * C), np.nan, np.float32))
    for r in (0, 1, n // 2, n - 1):
        np.testing.assert_array_equal(out[r], rows[r:r + KW].reshape(-1))
