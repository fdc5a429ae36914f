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


@pytest.mark.parametrize("shape, KH, padding", [((3, 2, 4, 5), 3, (1, 1, 1, 1)), ((2, 1, 3, 3), 2, (0, 1, 0, 1)),
                                               ((2, 3, 2, 4), 3, (3, 3, 3, 3)), ((4, 2, 5, 2), 1, (0, 0, 0, 0))])
def test_stack_padded_places_each_image_and_keeps_every_window_inside_its_own(shape, KH, padding):
    from minicnn.engine.windows import stack_layout, stack_padded
    N, C, H, W = shape
    top, bottom, left, right = padding
    x = np.random.default_rng(0).standard_normal((N, H, W, C)).astype(np.float32) + 5   # no zero among them
    stack = stack_layout(shape, KH, padding)
    xs = stack_padded(x, padding, stack, "test.xs")
    H_out = H + top + bottom - KH + 1
    assert xs.shape == (stack.rows + 1, W + left + right, C)
    assert stack.out_rows == (N - 1) * stack.step + H_out and stack.step >= H_out
    for n in range(N):
        np.testing.assert_array_equal(xs[n * stack.step + top:n * stack.step + top + H, left:left + W], x[n])
        # Output row y of image n reads stacked rows n*step + y .. + KH - 1: that image's padded rows, no other's.
        window = xs[n * stack.step:n * stack.step + H_out + KH - 1]
        padded = np.pad(x[n], ((top, bottom), (left, right), (0, 0)))
        np.testing.assert_array_equal(window, padded)
    assert np.count_nonzero(xs) == x.size                  # every other number is padding


@pytest.mark.parametrize("rows, Wp, C, KW", [(4, 5, 3, 3), (2, 2, 1, 2), (3, 4, 4, 1), (2, 6, 2, 5)])
def test_output_width_windows_puts_the_kw_neighbours_side_by_side(rows, Wp, C, KW):
    from minicnn.engine.windows import output_width_windows
    xs = np.random.default_rng(0).standard_normal((rows + 1, Wp, C)).astype(np.float32)
    W_out = Wp - KW + 1
    out = output_width_windows(xs, KW, W_out, np.full((rows * W_out, KW * C), np.nan, np.float32))
    for r in range(rows):
        for x in range(W_out):
            np.testing.assert_array_equal(out[r * W_out + x], xs[r, x:x + KW].reshape(-1))
