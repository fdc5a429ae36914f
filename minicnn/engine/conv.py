"""The fast convolution: ``conv2d_forward`` and ``conv2d_backward`` of the textbook (``minicnn.nn.textbook``), same signatures.

Three ways to build the products, picked by shape:

- stride 1 with ``WIDTH_WINDOW_MIN_CHANNELS`` or more input channels: no
  im2col at all, KH products over the width windows of the padded batch
  (``windows.width_windows``, ``windows.product_rows``);
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
    pad_channels_last,
    product_rows,
    width_windows,
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


def _width_windows_dx(W_rows, d, Wp, dwide, dx_rows):
    """dx of a width-window convolution, a block of rows at a time; replaces two whole-batch passes.

    ``dwide[r] = sum_i d[r - i*Wp] @ W_i.T`` (each block gathers what reaches its
    rows, so blocks never overlap), then the adjoint of ``width_windows``:
    ``dx_rows[r] = sum_j dwide[r - j, j*C:(j+1)*C]``.

    Shape: W_rows KH x (KW*C, F), d (M, F), dwide (R, KW*C), dx_rows (R + KW - 1, C)
    """
    M, R, C = d.shape[0], dwide.shape[0], dx_rows.shape[1]
    KW = dwide.shape[1] // C
    groups = block_groups(R)

    def gather(g):
        for lo, hi in groups[g]:
            top = min(hi, M)
            if lo < top:
                gemm(d[lo:top], W_rows[0].T, dwide[lo:top])
            if hi > max(lo, M):
                dwide[max(lo, M):hi] = 0                   # rows past M only gather from kernel rows i >= 1
            for i in range(1, len(W_rows)):
                first, last = max(lo, i * Wp), min(hi, M + i * Wp)
                if first < last:
                    gemm(d[first - i * Wp:last - i * Wp], W_rows[i].T, dwide[first:last], accumulate=True)

    def adjoint(g):                                        # reads the rows of dwide just before its own too
        for lo, hi in groups[g]:
            dx_rows[lo:hi] = dwide[lo:hi, :C]
            for j in range(1, KW):
                first = max(lo, j)
                dx_rows[first:hi] += dwide[first - j:hi - j, j * C:(j + 1) * C]

    run_groups(gather, groups)
    run_groups(adjoint, groups)
    dx_rows[R:] = 0                                        # the last KW - 1 rows: only offsets j reach them
    for j in range(1, KW):
        dx_rows[R:R + j] += dwide[R - j:R, j * C:(j + 1) * C]
    return dx_rows


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs from its forward."""
    x_shape: tuple          # (N, C, H, W)
    stride: tuple           # (SH, SW)
    padding: tuple          # (top, bottom, left, right)
    xp: np.ndarray          # (N, Hp, Wp, C): the padded input, channels-last
    W_k: np.ndarray         # (KH, KW, C, F): the filters, offsets first
    windows: np.ndarray     # the width windows (N*Hp*Wp - KW + 1, KW*C), or the im2col rows
    width_windows: bool     # which of the two ``windows`` holds
    has_bias: bool


def conv2d_forward(x, W, b, stride, padding):
    """``out = conv(x, W) + b``; replaces the im2col and product of ``minicnn.nn.textbook.conv2d_forward``.

    Shape: x (N, C, H, W) any memory layout, W (F, C, KH, KW), b (F,) or None, stride (SH, SW),
           padding (top, bottom, left, right) -> out (N, F, H_out, W_out) (a view of a channels-last buffer), cache
    """
    N, C, H, W_in = x.shape
    F, _, KH, KW = W.shape
    SH, SW = stride
    dtype = x.dtype
    xp = pad_channels_last(x.transpose(0, 2, 3, 1), padding, "conv.xp")             # (N, Hp, Wp, C)
    H_out, W_out = (xp.shape[1] - KH) // SH + 1, (xp.shape[2] - KW) // SW + 1
    W_k = W.transpose(2, 3, 1, 0)                                                 # (KH, KW, C, F)
    use_width_windows = tuple(stride) == (1, 1) and C >= WIDTH_WINDOW_MIN_CHANNELS
    if use_width_windows:
        M, Wp = product_rows(xp.shape, (KH, KW)), xp.shape[2]
        windows = width_windows(xp, KW, buffer("conv.wide", (xp.size // C - KW + 1, KW * C), dtype))
        out = buffer("conv.out", (xp.size // C, F), dtype)                          # (N*Hp*Wp, F); rows past M unread
        W_rows, groups = [W_k[i].reshape(KW * C, F) for i in range(KH)], block_groups(M)

        def products(g):                                # out[r] = sum_i wide[r + i*Wp] @ W_i, a block at a time
            for lo, hi in groups[g]:
                if b is not None:
                    fill_rows(out[lo:hi], b)
                for i in range(KH):
                    gemm(windows[i * Wp + lo:i * Wp + hi], W_rows[i], out[lo:hi], accumulate=b is not None or i > 0)

        run_groups(products, groups)
        out = out.reshape(xp.shape[:3] + (F,))[:, :H_out, :W_out, :]
    else:
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
    cache = ConvCache(x.shape, tuple(stride), tuple(padding), xp, W_k, windows, use_width_windows, b is not None)
    return out.transpose(0, 3, 1, 2), cache                                        # (N, F, H_out, W_out) view


def conv2d_backward(dout, cache, need_dx):
    """-> (dx or None, dW, db or None); replaces the products and col2im of ``minicnn.nn.textbook.conv2d_backward``.

    Shape: dout (N, F, H_out, W_out) -> dx (N, C, H, W), dW (F, C, KH, KW), db (F,)
    """
    N, C, H, W_in = cache.x_shape
    xp, W_k = cache.xp, cache.W_k
    KH, KW, _, F = W_k.shape
    dtype = xp.dtype
    H_out, W_out = dout.shape[2:]
    dout_hwc = dout.transpose(0, 2, 3, 1)                                          # (N, H_out, W_out, F) view
    dW_k = buffer("conv.dW", (KH, KW, C, F), dtype)
    dxp = db = None
    if cache.width_windows:
        M, Wp, wide = product_rows(xp.shape, (KH, KW)), xp.shape[2], cache.windows
        # dout on the padded grid, zero on the rows past the output (a border no caller with this tag writes).
        dpad = buffer("conv.dpad", xp.shape[:3] + (F,), dtype, zeros=True, tag=(H_out, W_out))
        dpad[:, :H_out, :W_out, :] = dout_hwc
        d = dpad.reshape(-1, F)[:M]                                                # (M, F)
        groups = block_groups(M)
        partial = [dW_k] + [buffer(f"conv.dW{g}", dW_k.shape, dtype) for g in range(1, len(groups))]

        def products(g):                                # dW_i = sum_r wide[r + i*Wp]^T d[r], a block at a time
            for n, (lo, hi) in enumerate(groups[g]):
                for i in range(KH):
                    gemm(wide[i * Wp + lo:i * Wp + hi].T, d[lo:hi], partial[g][i].reshape(KW * C, F),
                         accumulate=n > 0)

        run_groups(products, groups)
        for p in partial[1:]:                           # each thread's share of the sum, added in order
            dW_k += p
        if need_dx:
            dwide = buffer("conv.dwide", wide.shape, dtype)
            dxp = buffer("conv.dx", xp.shape, dtype)
            _width_windows_dx([W_k[i].reshape(KW * C, F) for i in range(KH)], d, Wp, dwide, dxp.reshape(-1, C))
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
    if cache.has_bias and db is None:
        db = column_sums(d)
    dx = None
    if need_dx:
        top, _, left, _ = cache.padding
        dx = dxp[:, top:top + H, left:left + W_in, :].transpose(0, 3, 1, 2)       # (N, C, H, W) view
    return dx, dW_k.transpose(3, 2, 0, 1), db
