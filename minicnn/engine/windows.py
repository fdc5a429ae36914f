"""Sliding windows of channels-last batches: the fast relatives of ``minicnn.nn.im2col``.

Activations are stored (N, H, W, C) in memory, so every window slice copies
whole runs of C numbers; these functions take that layout and write into
buffers the caller gives.
"""
from typing import NamedTuple

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


class Stack(NamedTuple):
    """Where a stride-1 convolution finds its batch stacked into one tall padded image (``stack_padded``).

    Image n's first row is stacked row ``n*step + top``: the images follow each other
    ``step`` rows apart, so one image's bottom padding is the next one's top padding
    and no row of zeros is stored (or multiplied) twice.  Output row y of image n is
    stacked output row ``n*step + y``, and it reads stacked input rows ``n*step + y + i``
    for the kernel rows i.
    """
    step: int          # stacked rows per image: H + max(top, bottom), or H_out if that is more
    rows: int          # stacked input rows the products read: (N - 1)*step + Hp
    out_rows: int      # stacked output rows computed: (N - 1)*step + H_out


def stack_layout(x_shape, kernel_height, padding):
    """The ``Stack`` of a stride-1 convolution of x (N, C, H, W) by kernels KH rows high, padded (top, bottom, ...)."""
    N, _, H, _ = x_shape
    top, bottom = padding[:2]
    H_out = H + top + bottom - kernel_height + 1
    step = max(H + max(top, bottom), H_out)
    return Stack(step, (N - 1) * step + H + top + bottom, (N - 1) * step + H_out)


def stack_padded(x_hwc, padding, stack, name):
    """Copy (N, H, W, C) into a pooled zero buffer, the images stacked ``stack.step`` rows apart (``Stack``).

    The buffer has one row of zeros more than the products read, so that
    ``output_width_windows`` can view every row's windows in one piece.

    Shape: x_hwc (N, H, W, C) -> (stack.rows + 1, W + left + right, C)
    """
    top, _, left, right = padding
    N, H, W, C = x_hwc.shape
    xs = buffer(name, (stack.rows + 1, W + left + right, C), x_hwc.dtype, zeros=True, tag=(tuple(padding), stack))
    xs[:N * stack.step].reshape(N, stack.step, -1, C)[:, top:top + H, left:left + W, :] = x_hwc
    return xs


def output_width_windows(xs, KW, W_out, out):
    """The KW neighbours along the width of every output position, side by side: an im2col of the width only.

    ``out[r*W_out + x] = xs[r, x:x + KW, :]`` flattened, for the first ``out.shape[0] // W_out``
    rows r of xs.  Each kernel row i of a stride-1 convolution is then one product
    ``out[i*W_out : i*W_out + M] @ W[:, :, i].reshape(KW*C, F)`` on contiguous rows: KH
    products of depth KW*C instead of KH*KW thin ones, for a copy of KW times the input.

    Shape: xs (R + 1, Wp, C) with W_out <= Wp - KW + 1, out (R*W_out, KW*C) -> out
    """
    rows, Wp, C = xs.shape[0] - 1, xs.shape[1], xs.shape[2]
    # Window p is the run flat[p*C : p*C + KW*C] of the flattened rows: one copy from a read-only view
    # (each window one run of KW*C numbers) rather than KW copies of C-number pieces.
    flat = xs.reshape(-1)
    view = np.lib.stride_tricks.sliding_window_view(flat, KW * C)[::C][:rows * Wp]
    np.copyto(out.reshape(rows, W_out, KW * C), view.reshape(rows, Wp, KW * C)[:, :W_out])
    return out
