"""Convolution, pooling and batch normalisation, written as plain nested loops: the implementation named ``"loops"``.

Slow on purpose: every output value is computed the way it is drawn on the
blackboard, one window at a time, and every gradient by the chain rule one
window at a time.  These functions are the oracle the textbook math and the
fast engine are tested against, and the thing to read first.

The ``*_naive`` functions take their arguments the plain way; the ``*_forward``
and ``*_backward`` functions at the end wrap them in the signatures of
``minicnn.nn.textbook``, so that ``use_engine("loops")`` runs a whole network on
them (the layers without loops, such as ReLU or Dense, run their textbook math).
"""
from typing import NamedTuple

import numpy as np


def _pads(padding):
    """int, (ph, pw), ((top, bottom), (left, right)) or (top, bottom, left, right) -> (top, bottom, left, right)"""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 4:
        return tuple(padding)
    ph, pw = padding
    (top, bottom) = (ph, ph) if isinstance(ph, int) else ph
    (left, right) = (pw, pw) if isinstance(pw, int) else pw
    return top, bottom, left, right


def _zero_padded(x, pads):
    """x with (top, bottom, left, right) rows and columns of zeros around each image."""
    top, bottom, left, right = pads
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + top + bottom, W + left + right), dtype=x.dtype)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


def conv2d_naive(x, W, b=None, stride=1, padding=0):
    """Cross-correlation of a batch of images with a bank of filters, four nested loops.

    Parameters
    ----------
    x : (N, C, H, W) input
    W : (F, C, KH, KW) filters
    b : (F,) biases, optional
    stride : int or (SH, SW)
    padding : int, (ph, pw), ((top, bottom), (left, right)) or (top, bottom, left, right)

    Returns
    -------
    out : (N, F, H_out, W_out),  H_out = (H + top + bottom - KH) // SH + 1
    """
    SH, SW = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = _pads(padding)
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = _zero_padded(x, (top, bottom, left, right))
    H_out = (H + top + bottom - KH) // SH + 1
    W_out = (Wd + left + right - KW) // SW + 1
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, W))
    for n in range(N):                      # every image
        for f in range(F):                  # every filter
            for y in range(H_out):          # every window position ...
                for x_ in range(W_out):
                    patch = xp[n, :, y * SH:y * SH + KH, x_ * SW:x_ * SW + KW]  # (C, KH, KW)
                    out[n, f, y, x_] = np.sum(patch * W[f])                     # multiply and add up
                    if b is not None:
                        out[n, f, y, x_] += b[f]
    return out


def conv2d_backward_naive(x, W, dout, stride=1, padding=0):
    """Gradients of ``conv2d_naive``, one window at a time: -> (dx, dW, db).

    Output ``out[n, f, y, x]`` came from one window of ``x_pad`` times ``W[f]``, so by
    the chain rule its gradient ``dout[n, f, y, x]`` adds ``dout * window`` to ``dW[f]``
    and ``dout * W[f]`` back onto that window of ``dx_pad``; ``db[f]`` sums ``dout[:, f]``.

    Shape: x (N, C, H, W), W (F, C, KH, KW), dout (N, F, H_out, W_out)
           -> dx (N, C, H, W), dW (F, C, KH, KW), db (F,)
    """
    SH, SW = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = _pads(padding)
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = _zero_padded(x, (top, bottom, left, right))
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for n in range(N):
        for f in range(F):
            for y in range(dout.shape[2]):
                for x_ in range(dout.shape[3]):
                    window = (n, slice(None), slice(y * SH, y * SH + KH), slice(x_ * SW, x_ * SW + KW))
                    dW[f] += dout[n, f, y, x_] * xp[window]
                    dxp[window] += dout[n, f, y, x_] * W[f]
    return dxp[:, :, top:top + H, left:left + Wd], dW, dout.sum(axis=(0, 2, 3))


def maxpool2d_naive(x, kernel_size, stride=None):
    """Max over each window, loops over images, channels and window positions.

    Returns (out, argmax): ``argmax[n, c, y, x]`` is the (row, col) in ``x`` of the
    first maximum of the window in row-major order, shape (N, C, H_out, W_out, 2).
    """
    KH, KW = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    stride = (KH, KW) if stride is None else stride
    SH, SW = (stride, stride) if isinstance(stride, int) else stride
    N, C, H, W = x.shape
    H_out, W_out = (H - KH) // SH + 1, (W - KW) // SW + 1
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    argmax = np.zeros((N, C, H_out, W_out, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for y in range(H_out):
                for x_ in range(W_out):
                    window = x[n, c, y * SH:y * SH + KH, x_ * SW:x_ * SW + KW]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # argmax: first maximum
                    out[n, c, y, x_] = window[i, j]
                    argmax[n, c, y, x_] = (y * SH + i, x_ * SW + j)
    return out, argmax


def maxpool2d_backward_naive(x, dout, kernel_size, stride=None):
    """Route each output gradient to the input that won its window (first one on ties)."""
    _, argmax = maxpool2d_naive(x, kernel_size, stride)
    dx = np.zeros_like(x, dtype=dout.dtype)
    N, C, H_out, W_out = dout.shape
    for n in range(N):
        for c in range(C):
            for y in range(H_out):
                for x_ in range(W_out):
                    i, j = argmax[n, c, y, x_]
                    dx[n, c, i, j] += dout[n, c, y, x_]
    return dx


def avgpool2d_naive(x, kernel_size, stride=None, padding=0):
    """Mean of each window of the zero-padded input (the zeros count), loops over images, channels and windows.

    Shape: x (N, C, H, W) -> out (N, C, H_out, W_out),  H_out = (H + 2*ph - KH) // SH + 1
    """
    KH, KW = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    stride = (KH, KW) if stride is None else stride
    SH, SW = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = _zero_padded(x, (ph, ph, pw, pw))
    N, C, Hp, Wp = xp.shape
    H_out, W_out = (Hp - KH) // SH + 1, (Wp - KW) // SW + 1
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for y in range(H_out):
                for x_ in range(W_out):
                    out[n, c, y, x_] = np.sum(xp[n, c, y * SH:y * SH + KH, x_ * SW:x_ * SW + KW]) / (KH * KW)
    return out


def avgpool2d_backward_naive(x, dout, kernel_size, stride=None, padding=0):
    """Each output gradient shared equally, ``dout / (KH*KW)``, by the inputs of its window (padding dropped)."""
    KH, KW = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    stride = (KH, KW) if stride is None else stride
    SH, SW = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for y in range(dout.shape[2]):
                for x_ in range(dout.shape[3]):
                    dxp[n, c, y * SH:y * SH + KH, x_ * SW:x_ * SW + KW] += dout[n, c, y, x_] / (KH * KW)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def batchnorm_naive(x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """Batch normalisation one channel at a time: -> (out, mean, var).

    Training (no running statistics given): each channel's mean and biased variance
    are summed value by value over the batch (and H, W); evaluation: the given running
    statistics.  ``out = gamma * (x - mean) / sqrt(var + eps) + beta``; ``var`` returned
    is the biased one used here.

    Shape: x (N, C, H, W) or (N, C); gamma, beta, running_mean, running_var (C,)
    """
    x4 = x.reshape(x.shape + (1, 1)) if x.ndim == 2 else x
    N, C, H, W = x4.shape
    n = N * H * W
    out = np.zeros_like(x4)
    mean, var = np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        if running_mean is None:
            total = 0.0
            for i in range(N):
                for y in range(H):
                    for x_ in range(W):
                        total += x4[i, c, y, x_]
            mean[c] = total / n
            total = 0.0
            for i in range(N):
                for y in range(H):
                    for x_ in range(W):
                        total += (x4[i, c, y, x_] - mean[c]) ** 2
            var[c] = total / n
        else:
            mean[c], var[c] = running_mean[c], running_var[c]
        scale = gamma[c] / np.sqrt(var[c] + eps)
        for i in range(N):
            for y in range(H):
                for x_ in range(W):
                    out[i, c, y, x_] = (x4[i, c, y, x_] - mean[c]) * scale + beta[c]
    return out.reshape(x.shape), mean, var


def batchnorm_backward_naive(x, gamma, dout, eps=1e-5, running_mean=None, running_var=None):
    """Gradients of ``batchnorm_naive``, one value at a time: -> (dx, dgamma, dbeta).

    Training (no running statistics given): per channel, with n values, xhat = (x - mean) / sigma,
    ``dx_j = gamma / (n sigma) * (n dout_j - sum_i dout_i - xhat_j sum_i dout_i xhat_i)``
    (the derivation is in ``minicnn.nn.textbook``); evaluation: ``dx_j = gamma / sigma * dout_j``.

    Shape: x, dout (N, C, H, W) or (N, C); gamma (C,) -> dx like x, dgamma (C,), dbeta (C,)
    """
    x4 = x.reshape(x.shape + (1, 1)) if x.ndim == 2 else x
    d4 = dout.reshape(x4.shape)
    N, C, H, W = x4.shape
    n = N * H * W
    _, mean, var = batchnorm_naive(x, np.ones(C, x.dtype), np.zeros(C, x.dtype), eps, running_mean, running_var)
    dx = np.zeros_like(d4)
    dgamma, dbeta = np.zeros(C, dtype=dout.dtype), np.zeros(C, dtype=dout.dtype)
    for c in range(C):
        mu, sigma = mean[c], np.sqrt(var[c] + eps)
        sum_d = sum_d_xhat = 0.0
        for i in range(N):
            for y in range(H):
                for x_ in range(W):
                    sum_d += d4[i, c, y, x_]
                    sum_d_xhat += d4[i, c, y, x_] * (x4[i, c, y, x_] - mu) / sigma
        dbeta[c], dgamma[c] = sum_d, sum_d_xhat
        for i in range(N):
            for y in range(H):
                for x_ in range(W):
                    if running_var is None:
                        xhat = (x4[i, c, y, x_] - mu) / sigma
                        dx[i, c, y, x_] = gamma[c] / (n * sigma) * (n * d4[i, c, y, x_] - sum_d - xhat * sum_d_xhat)
                    else:
                        dx[i, c, y, x_] = gamma[c] / sigma * d4[i, c, y, x_]
    return dx.reshape(dout.shape), dgamma, dbeta


# -- the same loops in the signatures of minicnn.nn.textbook (the "loops" implementation) ----------


class ConvCache(NamedTuple):
    x: np.ndarray
    W: np.ndarray
    stride: tuple
    padding: tuple
    has_bias: bool


def conv2d_forward(x, W, b, stride, padding):
    """``conv2d_naive`` as ``minicnn.nn.textbook.conv2d_forward``: padding (top, bottom, left, right) -> out, cache"""
    return conv2d_naive(x, W, b, stride, padding).astype(x.dtype, copy=False), ConvCache(x, W, stride, padding, b is not None)


def conv2d_backward(dout, cache, need_dx):
    dx, dW, db = conv2d_backward_naive(cache.x, cache.W, dout, cache.stride, cache.padding)
    return (dx if need_dx else None), dW, (db if cache.has_bias else None)


class PoolCache(NamedTuple):
    x: np.ndarray
    kernel_size: tuple
    stride: tuple
    padding: tuple


def maxpool2d_forward(x, kernel_size, stride):
    return maxpool2d_naive(x, kernel_size, stride)[0], PoolCache(x, kernel_size, stride, (0, 0))


def maxpool2d_backward(dout, cache):
    return maxpool2d_backward_naive(cache.x, dout, cache.kernel_size, cache.stride)


def avgpool2d_forward(x, kernel_size, stride, padding):
    return avgpool2d_naive(x, kernel_size, stride, padding), PoolCache(x, kernel_size, stride, padding)


def avgpool2d_backward(dout, cache):
    return avgpool2d_backward_naive(cache.x, dout, cache.kernel_size, cache.stride, cache.padding)


def global_avgpool2d_forward(x):
    """An average pool whose one window is the whole map."""
    H, W = x.shape[2:]
    return avgpool2d_naive(x, (H, W))[:, :, 0, 0], PoolCache(x, (H, W), (H, W), (0, 0))


def global_avgpool2d_backward(dout, cache):
    return avgpool2d_backward_naive(cache.x, dout[:, :, None, None], cache.kernel_size, cache.stride)


class BatchNormCache(NamedTuple):
    x: np.ndarray
    gamma: np.ndarray
    eps: float
    running: tuple              # (running_mean, running_var) in evaluation, () in training


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``batchnorm_naive`` as ``minicnn.nn.textbook.batchnorm_forward``, the running statistics updated value by value."""
    if training:
        out, mean, var = batchnorm_naive(x, gamma, beta, eps)
        n = x.size // x.shape[1]
        new_mean, new_var = np.empty_like(running_mean), np.empty_like(running_var)
        for c in range(len(running_mean)):
            new_mean[c] = running_mean[c] * (1 - momentum) + momentum * mean[c]
            new_var[c] = running_var[c] * (1 - momentum) + momentum * var[c] * n / (n - 1)
        return out, new_mean, new_var, BatchNormCache(x, gamma, eps, ())
    stats = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    out = batchnorm_naive(x, gamma, beta, eps, *stats)[0]
    return out, running_mean, running_var, BatchNormCache(x, gamma, eps, stats)


def batchnorm_backward(dout, cache, need_dx):
    dx, dgamma, dbeta = batchnorm_backward_naive(cache.x, cache.gamma, dout, cache.eps, *cache.running)
    return (dx if need_dx else None), dgamma, dbeta
