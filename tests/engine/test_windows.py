"""The channels-last window helpers of minicnn.engine.windows."""
import numpy as np
import pytest


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
