"""Sliding windows to columns and back: the trick that turns convolution into one matrix product.

A convolution multiplies every KH x KW window of the (padded) input by the same
filters.  ``im2col`` copies each window into a column, so that all windows of an
image can be multiplied by all filters in a single matrix product; ``col2im`` is
its adjoint: it adds every column back onto the window it came from, which is
exactly what the backward pass of the convolution needs.

Both functions loop over the KH * KW kernel offsets only (never over images or
pixels): offset (i, j) of every window is one strided slice of the input.

Padding is always given as four numbers ``(top, bottom, left, right)``; layers
resolve ints, pairs, ``"same"`` and ``"valid"`` before calling in here.

``im2col`` and ``col2im`` below are the textbook (N, C, H, W) versions, the
easiest to read.  ``Conv2D`` runs on the faster channels-last helpers further
down (see "Fast paths"); the tests check both against ``minicnn.reference``.
"""
import sys

import numpy as np
from scipy.linalg import blas as _blas


def output_size(size, kernel, stride, pad_before, pad_after):
    """Number of window positions along one axis: ``(size + pads - kernel) // stride + 1``."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def pad_nchw(x, padding):
    """Zero-pad the two spatial axes of an (N, C, H, W) array.

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H + top + bottom, W + left + right)
    """
    top, bottom, left, right = padding
    if top == bottom == left == right == 0:
        return x
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + top + bottom, W + left + right), dtype=x.dtype)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


def im2col(x, kernel_size, stride, padding):
    """Copy every window of ``x`` into a column.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : (KH, KW)
    stride : (SH, SW)
    padding : (top, bottom, left, right)

    Returns
    -------
    cols : ndarray, shape (N, C*KH*KW, H_out*W_out)
        ``cols[n, (c, i, j), (y, x)] = x_padded[n, c, y*SH + i, x*SW + j]``:
        column ``(y, x)`` of image ``n`` is the window whose top-left corner is
        at ``(y*SH, x*SW)``.  Rows are ordered like ``W.reshape(F, C*KH*KW)``,
        so the convolution is ``W.reshape(F, -1) @ cols``, giving (N, F, H_out*W_out)
        with no transpose needed to get back to NCHW.
    """
    N, C, H, W = x.shape
    KH, KW = kernel_size
    SH, SW = stride
    H_out = output_size(H, KH, SH, padding[0], padding[1])
    W_out = output_size(W, KW, SW, padding[2], padding[3])
    xp = pad_nchw(x, padding)
    cols = np.empty((N, C, KH, KW, H_out, W_out), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            cols[:, :, i, j] = xp[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW]
    return cols.reshape(N, C * KH * KW, H_out * W_out)  # (N, patch, positions)


def col2im(cols, x_shape, kernel_size, stride, padding):
    """Add every column back onto the window it was copied from (the adjoint of ``im2col``).

    Where windows overlap, their contributions are summed, which is why the
    backward pass of a convolution is ``col2im(W.T @ dout)``.

    Parameters
    ----------
    cols : ndarray, shape (N, C*KH*KW, H_out*W_out)
    x_shape : (N, C, H, W), the shape of the unpadded input
    kernel_size, stride, padding : as for ``im2col``

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), same dtype as ``cols``
    """
    N, C, H, W = x_shape
    KH, KW = kernel_size
    SH, SW = stride
    top, bottom, left, right = padding
    H_out = output_size(H, KH, SH, top, bottom)
    W_out = output_size(W, KW, SW, left, right)
    cols = cols.reshape(N, C, KH, KW, H_out, W_out)
    dxp = np.zeros((N, C, H + top + bottom, W + left + right), dtype=cols.dtype)
    for i in range(KH):
        for j in range(KW):
            dxp[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW] += cols[:, :, i, j]
    if top == bottom == left == right == 0:
        return dxp
    return dxp[:, :, top:top + H, left:left + W]


# -- Fast paths ---------------------------------------------------------------------------------
#
# What makes a NumPy convolution slow is memory traffic, not arithmetic: copying
# windows, scattering them back, and fresh multi-megabyte temporaries.  So the
# layers keep activations channels-last in memory, (N, H, W, C), and hand them on
# as transposed views with the public (N, C, H, W) shape; every window slice then
# copies whole runs of C numbers.  Matrix products go straight to BLAS (``gemm``),
# which writes into a given buffer and can accumulate, so nothing big is
# allocated and no result needs a transpose.  All of this is invisible from
# outside except in ``.strides``.


_GEMM = {np.dtype(np.float32): _blas.sgemm, np.dtype(np.float64): _blas.dgemm}


def _blas_operand(m):
    """(array, trans) with op(array) == m for Fortran BLAS, copying only if m is neither C- nor F-contiguous."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def gemm(a, b, out, accumulate=False):
    """``out[...] = a @ b`` (or ``out += a @ b``) in place, for 2-D arrays.

    float32 and float64 go to BLAS directly (no temporary, transposed operands
    for free); other dtypes fall back to ``np.matmul``.  ``out`` must be C-contiguous.

    Shape: a (m, k), b (k, n), out (m, n)
    """
    fn = _GEMM.get(out.dtype)
    if fn is None or a.dtype != out.dtype or b.dtype != out.dtype or out.size == 0 or a.shape[1] == 0:
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    assert out.flags.c_contiguous and a.shape[1] == b.shape[0] and out.shape == (a.shape[0], b.shape[1])
    # In Fortran order out is out.T (n, m) = b.T @ a.T.
    bt, trans_b = _blas_operand(b.T)
    at, trans_a = _blas_operand(a.T)
    fn(1.0, bt, at, beta=1.0 if accumulate else 0.0, c=out.T, overwrite_c=1, trans_a=trans_b, trans_b=trans_a)
    return out


def column_sums(m, store):
    """``m.sum(axis=0)`` as a matrix-vector product (ones @ m): much faster than NumPy's reduction for narrow rows.

    Shape: m (rows, n) -> (n,)
    """
    if m.dtype not in _GEMM or not m.flags.c_contiguous:
        return m.sum(axis=0)
    ones = store.get("ones")
    if ones is None or ones.shape[1] < m.shape[0] or ones.dtype != m.dtype:
        ones = store["ones"] = np.ones((1, m.shape[0]), m.dtype)
    return gemm(ones[:, :m.shape[0]], m, np.empty((1, m.shape[1]), m.dtype))[0]


def fill_rows(out, row):
    """``out[...] = row`` for every row of a C-contiguous (m, n) array, in long runs.

    Broadcasting a short row directly makes NumPy loop over m runs of n numbers;
    copying a block of the row repeated ~4096 numbers long is several times faster.

    Shape: out (m, n), row (n,) -> out
    """
    m, n = out.shape
    reps = min(m, 4096 // max(n, 1))
    if reps > 1 and n > 0 and out.flags.c_contiguous:
        whole = m - m % reps
        block = np.tile(row.astype(out.dtype, copy=False), reps)                   # (reps*n,)
        out[:whole].reshape(-1, reps * n)[...] = block
        out[whole:] = row
    else:
        out[...] = row
    return out


def scratch(store, name, shape, dtype, zeros=False):
    """A reusable internal buffer ``store[name]``, reallocated only when shape or dtype change.

    With ``zeros=True`` a new buffer starts zeroed (callers then keep the parts
    they never write at zero, e.g. a padding border).  Never hand one out to a caller.
    """
    buf = store.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = store[name] = (np.zeros if zeros else np.empty)(shape, dtype)
    return buf


def scratch_like(store, name, like, dtype):
    """A reusable internal buffer shaped like ``like`` and in its memory order (``np.empty_like``)."""
    key = (like.shape, like.strides, like.dtype, np.dtype(dtype))
    entry = store.get(name)
    if entry is None or entry[0] != key:
        entry = store[name] = (key, np.empty_like(like, dtype=dtype))
    return entry[1]


def _references_when_unused():
    """What sys.getrefcount reports, in ``_reuse_if_unused``, for a buffer nobody outside the store holds."""
    store = {"probe": (None, np.empty(0))}
    entry = store.get("probe")
    return sys.getrefcount(entry[1])


_UNUSED = _references_when_unused() if sys.implementation.name == "cpython" else None


def output_like(store, name, like, dtype=None):
    """A buffer for a layer's *output*, shaped like ``like`` and in its memory order.

    Writing a fresh multi-megabyte array costs a page fault per 4 KiB (about a
    millisecond per 3 MB here), so the array handed out last time is reused --
    but only when nobody holds it any more: CPython's reference count says the
    store is its last owner (a view of it counts too, through ``.base``).  An
    array you still hold is never overwritten; you get a new one instead.
    """
    dtype = like.dtype if dtype is None else np.dtype(dtype)
    return _reuse_if_unused(store, name, (like.shape, like.strides, like.dtype, dtype),
                            lambda: np.empty_like(like, dtype=dtype))


def output(store, name, shape, dtype):
    """``output_like`` for a new C-ordered array of the given shape."""
    return _reuse_if_unused(store, name, (tuple(shape), np.dtype(dtype)), lambda: np.empty(shape, dtype))


def _reuse_if_unused(store, name, key, make):
    entry = store.get(name)
    if entry is not None and entry[0] == key and _UNUSED is not None and sys.getrefcount(entry[1]) == _UNUSED:
        return entry[1]
    buf = make()
    store[name] = (key, buf)
    return buf


def pad_channels_last(x_hwc, padding, store, name="xp"):
    """Copy (N, H, W, C) into the middle of a zero-bordered scratch buffer (N, H+top+bottom, W+left+right, C)."""
    top, bottom, left, right = padding
    N, H, W, C = x_hwc.shape
    xp = scratch(store, name, (N, H + top + bottom, W + left + right, C), x_hwc.dtype, zeros=True)
    xp[:, top:top + H, left:left + W, :] = x_hwc
    return xp


def im2col_channels_last(xp, kernel_size, stride, out):
    """Windows of a padded channels-last batch as rows: ``rows[(n, y, x), (i, j, c)] = xp[n, y*SH + i, x*SW + j, c]``.

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
    """Adjoint of ``im2col_channels_last``: zero ``dxp`` and add each row back onto its window.

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


def shifted_rows(padded_shape, kernel_size):
    """For a stride-1 convolution on a flattened padded batch: M, the number of rows each product covers.

    Flatten xp (N, Hp, Wp, C) to rows r = (n*Hp + y)*Wp + x.  Output (n, y, x)
    then reads input row r + i*Wp + j for kernel offset (i, j), so with the
    width windows side by side (``width_windows``) the convolution is
    ``out[:M] = sum_i wide[i*Wp : i*Wp + M] @ W_i``: KH matrix products on
    contiguous slices.  Rows whose x or y lie past the output (the "junk" in
    the padding) are computed and ignored.  M is one past the last valid output row.
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
