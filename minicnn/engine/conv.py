"""The fast convolution: ``conv2d_forward`` and ``conv2d_backward`` of the textbook (``minicnn.nn.textbook``), same signatures.

Three ways to build the products, picked by shape:

- stride 1 with ``WIDTH_WINDOW_MIN_CHANNELS`` or more input channels: no
  im2col at all, KH products over the width windows of the batch stacked into
  one tall padded image (``windows.stack_padded``, ``windows.output_width_windows``);
- one input channel: im2col offset by offset into long rows, handed to BLAS transposed;
- otherwise: a channels-last im2col and one product.

All work channels-last, (N, H, W, C) in memory, and return (N, F, H_out, W_out)
views of channels-last buffers, which the next layer takes as they are.  Every
buffer comes from the pool (``minicnn.engine.buffers``); what backward needs is
in the cache, so it stays this call's until the cache is let go.
"""
from typing import NamedTuple

import numpy as np

from minicnn.engine import cblas, threads
from minicnn.engine.blas import column_sums, fill_rows, gemm
from minicnn.engine.buffers import buffer
from minicnn.engine.windows import (
    col2im_channels_last,
    im2col_channels_last,
    im2col_offsets_first,
    output_width_windows,
    pad_channels_last,
    stack_layout,
    stack_padded,
)

# With fewer input channels than this, KH thin width-window products cost more than one im2col copy.
WIDTH_WINDOW_MIN_CHANNELS = 4


# Rows of a product done at a time: the block's slices of the width windows and of the output stay in the
# cache across the KH products over them, instead of each product streaming the whole batch from memory.
ROW_BLOCK = 8192


def row_blocks(n):
    """The [lo, hi) blocks of ``ROW_BLOCK`` rows that cover range(n)."""
    return [(lo, min(n, lo + ROW_BLOCK)) for lo in range(0, n, ROW_BLOCK)]


def block_groups(n):
    """The row blocks of range(n), in one group per engine thread (consecutive blocks; one group on one thread)."""
    blocks = row_blocks(n)
    return [blocks[lo:hi] for lo, hi in threads.parts(len(blocks), threads.MIN_PART)]


def run_groups(fn, groups):
    """``fn(group_index)`` for every group, on the engine's threads with BLAS on one thread in each."""
    if len(groups) == 1:
        return [fn(0)]
    with cblas.single_threaded_blas():
        return threads.run(lambda g, _: fn(g), [(g, g + 1) for g in range(len(groups))])


def _gather_dwide(W_rows, d, shift, lo, hi, dwide):
    """``dwide[r - lo] = sum_i d[r - i*shift] @ W_i.T`` for the rows r in [lo, hi) (d is zero past its last
    row): the products of a width-window convolution's dx, for the width windows of rows lo:hi.

    Shape: W_rows KH x (KW*C, F), d (M, F), dwide (>= hi - lo, KW*C) -> dwide
    """
    M = d.shape[0]
    if lo < min(hi, M):
        gemm(d[lo:min(hi, M)], W_rows[0].T, dwide[:min(hi, M) - lo])
    if hi > max(lo, M):
        dwide[max(lo, M) - lo:hi - lo] = 0                # rows past M only gather from kernel rows i >= 1
    for i in range(1, len(W_rows)):
        first, last = max(lo, i * shift), min(hi, M + i * shift)
        if first < last:
            gemm(d[first - i * shift:last - i * shift], W_rows[i].T, dwide[first - lo:last - lo], accumulate=True)
    return dwide


def _width_windows_dx(W_rows, d, stack, padding, W_out, dx):
    """dx of a stride-1 width-window convolution (replaces the textbook's dcols product and col2im), a chunk of
    images at a time: the chunk's width windows' dx are gathered (``_gather_dwide``) into a buffer that stays
    in the cache, then added into dx, the adjoint of ``output_width_windows`` and ``stack_padded`` at once:
    ``dx[n, y, x] = sum_j dwide[(n*step + top + y, x + left - j), j]``.  So the whole batch's dx of its windows,
    KW times the size of dx, is never written out and read back.

    Shape: W_rows KH x (KW*C, F), d (M, F) on the stacked output rows, dx (N, H, W, C) -> dx
    """
    N, H, W, C = dx.shape
    top, _, left, _ = padding
    KW = W_rows[0].shape[0] // C
    per_image = stack.step * W_out * KW * C                # one image's rows of the windows' dx

    def chunk(a, b):
        block = buffer("conv.dwide", (threads.chunk_images(per_image) * per_image // (KW * C), KW * C), dx.dtype)
        lo, hi = (a * stack.step + top) * W_out, ((b - 1) * stack.step + top + H) * W_out
        _gather_dwide(W_rows, d, W_out, lo, hi, block)
        wide = block[:(b - a) * stack.step * W_out].reshape(b - a, stack.step, W_out, KW, C)[:, :H]
        for j in range(KW):
            first = max(0, j - left)
            last = max(first, min(W, W_out + j - left))
            if j == 0:                                  # the first term is written, not added to zeros
                dx[a:b, :, :first] = 0
                dx[a:b, :, last:] = 0
                if first < last:
                    dx[a:b, :, first:last] = wide[:, :, first + left:last + left, 0]
            elif first < last:
                dx[a:b, :, first:last] += wide[:, :, first + left - j:last + left - j, j]

    parts = threads.parts(N, per_image)
    run_groups(lambda g: threads.in_chunks(chunk, *parts[g], per_image), parts)
    return dx


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs from its forward."""
    x_shape: tuple          # (N, C, H, W)
    stride: tuple           # (SH, SW)
    padding: tuple          # (top, bottom, left, right)
    xp: np.ndarray          # the padded input, channels-last: (N, Hp, Wp, C), or stacked (stack.rows + 1, Wp, C)
    W_k: np.ndarray         # (KH, KW, C, F): the filters, offsets first
    windows: np.ndarray     # the width windows (stack.rows*W_out, KW*C), or the im2col rows
    stack: object           # the ``windows.Stack`` of the width windows, None with im2col rows
    has_bias: bool


def conv2d_forward(x, W, b, stride, padding):
    """``out = conv(x, W) + b``; replaces the im2col and product of ``minicnn.nn.textbook.conv2d_forward``.

    Shape: x (N, C, H, W) any memory layout, W (F, C, KH, KW), b (F,) or None, stride (SH, SW),
           padding (top, bottom, left, right) -> out (N, F, H_out, W_out) (a view of a channels-last buffer), cache
    """
    N, C, H, W_in = x.shape
    F, _, KH, KW = W.shape
    SH, SW = stride
    top, bottom, left, right = padding
    dtype = x.dtype
    H_out, W_out = (H + top + bottom - KH) // SH + 1, (W_in + left + right - KW) // SW + 1
    W_k = W.transpose(2, 3, 1, 0)                                                 # (KH, KW, C, F)
    stack = None
    if tuple(stride) == (1, 1) and C >= WIDTH_WINDOW_MIN_CHANNELS:
        stack = stack_layout(x.shape, KH, padding)
        xp = stack_padded(x.transpose(0, 2, 3, 1), padding, stack, "conv.xs")       # (stack.rows + 1, Wp, C)
        windows = output_width_windows(xp, KW, W_out, buffer("conv.wide", (stack.rows * W_out, KW * C), dtype))
        out = buffer("conv.out", (N * stack.step * W_out, F), dtype)               # rows past M unread
        M, W_rows = stack.out_rows * W_out, [W_k[i].reshape(KW * C, F) for i in range(KH)]
        groups = block_groups(M)

        def products(g):                                # out[r] = sum_i wide[r + i*W_out] @ W_i, a block at a time
            for lo, hi in groups[g]:
                if b is not None:
                    fill_rows(out[lo:hi], b)
                for i in range(KH):
                    gemm(windows[i * W_out + lo:i * W_out + hi], W_rows[i], out[lo:hi],
                         accumulate=b is not None or i > 0)

        run_groups(products, groups)
        out = out.reshape(N, stack.step, W_out, F)[:, :H_out]
    else:
        xp = pad_channels_last(x.transpose(0, 2, 3, 1), padding, "conv.xp")         # (N, Hp, Wp, C)
        K, rows = KH * KW * C, N * H_out * W_out
        if C == 1:
            # With a bias, one more row of ones: the bias is then the product's last term (no pass of its own).
            windows = buffer("conv.cols_t", (K + (b is not None), rows), dtype)
            im2col_offsets_first(xp, (KH, KW), stride, windows[:K].reshape(KH, KW, C, N, H_out, W_out))
            W_all = W_k.reshape(-1, F)
            if b is not None:
                windows[K] = 1
                W_all = np.concatenate([W_all, b[None].astype(dtype, copy=False)])   # (K + 1, F)
            out = gemm(windows.T, W_all, buffer("conv.out", (rows, F), dtype))
        else:
            windows = im2col_channels_last(xp, (KH, KW), stride, buffer("conv.cols", (N, H_out, W_out, KH, KW, C), dtype))
            out = buffer("conv.out", (rows, F), dtype)                              # (N*H_out*W_out, F)
            if b is not None:
                fill_rows(out, b)
            gemm(windows, W_k.reshape(-1, F), out, accumulate=b is not None)
        out = out.reshape(N, H_out, W_out, F)
    cache = ConvCache(x.shape, tuple(stride), tuple(padding), xp, W_k, windows, stack, b is not None)
    return out.transpose(0, 3, 1, 2), cache                                        # (N, F, H_out, W_out) view


def conv2d_backward(dout, cache, need_dx):
    """-> (dx or None, dW, db or None); replaces the products and col2im of ``minicnn.nn.textbook.conv2d_backward``.

    Shape: dout (N, F, H_out, W_out) -> dx (N, C, H, W), dW (F, C, KH, KW), db (F,)
    """
    N, C, H, W_in = cache.x_shape
    xp, W_k, stack = cache.xp, cache.W_k, cache.stack
    KH, KW, _, F = W_k.shape
    dtype = xp.dtype
    H_out, W_out = dout.shape[2:]
    top, _, left, _ = cache.padding
    dout_hwc = dout.transpose(0, 2, 3, 1)                                          # (N, H_out, W_out, F) view
    dW_k = buffer("conv.dW", (KH, KW, C, F), dtype)
    dx = db = None
    if stack is not None:
        M, wide = stack.out_rows * W_out, cache.windows
        # dout on the stacked output rows, zero on the rows between images (a border no caller with this tag writes).
        dpad = buffer("conv.dpad", (N * stack.step * W_out, F), dtype, zeros=True, tag=(H_out, stack))
        dpad.reshape(N, stack.step, W_out, F)[:, :H_out] = dout_hwc
        d = dpad[:M]                                                               # (M, F)
        groups = block_groups(M)
        partial = [dW_k] + [buffer(f"conv.dW{g}", dW_k.shape, dtype) for g in range(1, len(groups))]

        def products(g):                                # dW_i = sum_r wide[r + i*W_out]^T d[r], a block at a time
            for n, (lo, hi) in enumerate(groups[g]):
                for i in range(KH):
                    gemm(wide[i * W_out + lo:i * W_out + hi].T, d[lo:hi], partial[g][i].reshape(KW * C, F),
                         accumulate=n > 0)

        run_groups(products, groups)
        for p in partial[1:]:                           # each thread's share of the sum, added in order
            dW_k += p
        if need_dx:
            dx = _width_windows_dx([W_k[i].reshape(KW * C, F) for i in range(KH)], d, stack, cache.padding, W_out,
                                   buffer("conv.dx", (N, H, W_in, C), dtype))
    else:
        d = np.ascontiguousarray(dout_hwc, dtype=dtype).reshape(-1, F)             # (N*H_out*W_out, F)
        K, cols = KH * KW * C, cache.windows
        if C == 1:
            # cols.T @ d, and with the row of ones its last row is db: sum over positions of d.
            both = gemm(cols, d, buffer("conv.dWb", (cols.shape[0], F), dtype))  # (K or K + 1, F)
            np.copyto(dW_k.reshape(-1, F), both[:K])
            if cache.has_bias:
                db = both[K].copy()
            cols = cols[:K].T
        else:
            cols = cols.reshape(d.shape[0], K)
            gemm(cols.T, d, dW_k.reshape(-1, F))
        if need_dx:
            dcols = gemm(d, W_k.reshape(-1, F).T, buffer("conv.dcols", cols.shape, dtype))
            dxp = col2im_channels_last(dcols, (KH, KW), cache.stride, buffer("conv.dx", xp.shape, dtype))
            dx = dxp[:, top:top + H, left:left + W_in, :]
    if cache.has_bias and db is None:
        db = column_sums(d)
    if dx is not None:
        dx = dx.transpose(0, 3, 1, 2)                                              # (N, C, H, W) view
    return dx, dW_k.transpose(3, 2, 0, 1), db
