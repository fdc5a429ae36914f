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

These are the textbook (N, C, H, W) versions that ``minicnn.nn.Conv2D`` reads
as its math; the fast engine's channels-last relatives are in
``minicnn.engine.windows``.  The tests check both against ``minicnn.nn.reference``.
"""
import numpy as np


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
