"""Sliding windows of channels-last batches: the fast relatives of ``minicnn.nn.im2col``.

Activations are stored (N, H, W, C) in memory, so every window slice copies
whole runs of C numbers; these functions take that layout and write into
buffers the caller gives.
"""
import numpy as np

from minicnn.engine.buffers import buffer


def pad_channels_last(x_hwc, padding, name):
    """Copy (N, H, W, C) into the middle of a zero-bordered pooled buffer; replaces ``nn.im2col.pad_nchw``.

    Shape: x_hwc (N, H, W, C) -> (N, H + top + bottom, W + left + right, C)
    """
    top, bottom, left, right = padding
    N, H, W, C = x_hwc.shape
    xp = buffer(name, (N, H + top + bottom, W + left + right, C), x_hwc.dtype, zeros=True, tag=tuple(padding))
    xp[:, top:top + H, left:left + W, :] = x_hwc
    return xp


def im2col_channels_last(xp, kernel_size, stride, out):
    """Windows as rows, ``rows[(n, y, x), (i, j, c)] = xp[n, y*SH + i, x*SW + j, c]``; replaces ``nn.im2col.im2col``.

    Shape:
        xp:  (N, Hp, Wp, C)  (already padded)
        out: (N, H_out, W_out, KH, KW, C) buffer, returned as (N*H_out*W_out, KH*KW*C)
    """
    N, H_out, W_out, KH, KW, C = out.shape
    SH, SW = stride
    for i in range(KH):
        for j in range(KW):
            out[:, :, :, i, j, :] = xp[:, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW, :]
    return out.reshape(N * H_out * W_out, KH * KW * C)


def im2col_offsets_first(xp, kernel_size, stride, out):
    """The transpose of ``im2col_channels_last``: ``cols_t[(i, j, c), (n, y, x)] = xp[n, y*SH + i, x*SW + j, c]``.

    With one input channel each kernel offset is one long run of copies (no
    interleaving every KH*KW numbers), several times faster; ``cols_t.T`` is the
    same matrix as ``im2col_channels_last`` gives, and BLAS takes it transposed for free.

    Shape:
        xp:  (N, Hp, Wp, C)  (already padded)
        out: (KH, KW, C, N, H_out, W_out) buffer, returned as (KH*KW*C, N*H_out*W_out)
    """
    KH, KW, C, N, H_out, W_out = out.shape
    SH, SW = stride
    for i in range(KH):
        for j in range(KW):
            out[i, j] = xp[:, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW, :].transpose(3, 0, 1, 2)
    return out.reshape(KH * KW * C, N * H_out * W_out)


def col2im_channels_last(rows, kernel_size, stride, dxp):
    """Adjoint of ``im2col_channels_last``: zero ``dxp`` and add each row back onto its window; replaces ``nn.im2col.col2im``.

    Shape: rows (N*H_out*W_out, KH*KW*C) -> dxp (N, Hp, Wp, C)
    """
    N, Hp, Wp, C = dxp.shape
    (KH, KW), (SH, SW) = kernel_size, stride
    H_out, W_out = (Hp - KH) // SH + 1, (Wp - KW) // SW + 1
    rows = rows.reshape(N, H_out, W_out, KH, KW, C)
    dxp.fill(0)
    for i in range(KH):
        for j in range(KW):
            dxp[:, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW, :] += rows[:, :, :, i, j, :]
    return dxp


def product_rows(padded_shape, kernel_size):
    """For a stride-1 convolution on a flattened padded batch: M, the number of rows each kernel-row product covers.

    Flatten xp (N, Hp, Wp, C) to rows r = (n*Hp + y)*Wp + x.  Output (n, y, x)
    then reads input row r + i*Wp + j for kernel offset (i, j), so with the
    width windows side by side (``width_windows``) the convolution is
    ``out[:M] = sum_i wide[i*Wp : i*Wp + M] @ W_i``: KH matrix products on
    contiguous slices.  Rows whose x or y lie past the output (in the padding)
    are computed and never read.  M is one past the last valid output row.
    """
    N, Hp, Wp, C = padded_shape
    KH, KW = kernel_size
    return N * Hp * Wp - (KH - 1) * Wp - (KW - 1)


def width_windows(xp, KW, out):
    """The KW neighbours along the width of every position, side by side: an im2col of the width axis only.

    ``out[r] = [rows[r], rows[r + 1], ..., rows[r + KW - 1]]`` for the rows of xp
    flattened to (N*Hp*Wp, C).  Each kernel row i of a stride-1 convolution is then
    one product ``out[i*Wp : i*Wp + M] @ W[:, :, i].reshape(KW*C, F)``: KH
    products of depth KW*C instead of KH*KW thin ones, for a copy of KW times the input.

    Shape: xp (N, Hp, Wp, C), out (N*Hp*Wp - KW + 1, KW*C) -> out
    """
    C = xp.shape[3]
    # Row r of out is the run flat[r*C : r*C + KW*C] of the flattened batch: one copy from a read-only
    # window view (each row one run of KW*C numbers) rather than KW copies of C-number pieces.
    flat = np.ascontiguousarray(xp).reshape(-1)
    np.copyto(out, np.lib.stride_tricks.sliding_window_view(flat, KW * C)[::C])
    return out
