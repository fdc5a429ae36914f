"""The math of every layer and optimizer, in textbook NumPy: each forward beside its backward.

This is the implementation named ``"textbook"`` in ``minicnn.nn.ops``; the loops
of ``minicnn.nn.reference`` and the fast engine (``minicnn.engine``) have the same
functions with the same signatures, and so may your own (``ops.register``).

    name_forward(x, *args)         -> out, cache
    name_backward(dout, cache)     -> dx                     (layers without parameters)
    name_backward(dout, cache, need_dx) -> dx, dW, db        (layers with parameters; dx None if not need_dx)

A layer class (``minicnn.nn.conv.Conv2D``, ...) holds the parameters and the
cache, and calls these through ``minicnn.nn.ops``.  Every function returns the
dtype it was given; caches with several parts are named tuples.
"""
from typing import NamedTuple

import numpy as np

from minicnn.nn.im2col import col2im, im2col, output_size, pad_nchw

# -- convolution ---------------------------------------------------------------------------------


class ConvCache(NamedTuple):
    x_shape: tuple
    W: np.ndarray
    stride: tuple
    padding: tuple
    cols: np.ndarray        # (N, C*KH*KW, H_out*W_out): every window of x as a column
    has_bias: bool


def conv2d_forward(x, W, b, stride, padding):
    """Cross-correlation as im2col and one matrix product: ``out[n] = W.reshape(F, -1) @ cols[n] + b``.

    Shape:
        x: (N, C, H, W),  W: (F, C, KH, KW),  b: (F,) or None
        stride: (SH, SW),  padding: (top, bottom, left, right)
        out: (N, F, H_out, W_out),  H_out = (H + top + bottom - KH) // SH + 1
    """
    N, C, H, W_in = x.shape
    F, _, KH, KW = W.shape
    H_out = output_size(H, KH, stride[0], padding[0], padding[1])
    W_out = output_size(W_in, KW, stride[1], padding[2], padding[3])
    cols = im2col(x, (KH, KW), stride, padding)                # (N, C*KH*KW, H_out*W_out)
    out = W.reshape(F, -1) @ cols                              # (F, C*KH*KW) @ -> (N, F, H_out*W_out)
    if b is not None:
        out += b[:, None]
    return out.reshape(N, F, H_out, W_out), ConvCache(x.shape, W, tuple(stride), tuple(padding), cols, b is not None)


def conv2d_backward(dout, cache, need_dx):
    """One product per gradient, and col2im (the adjoint of im2col) for dx.

    Shape: dout (N, F, H_out, W_out) -> dx (N, C, H, W) or None, dW (F, C, KH, KW), db (F,) or None
    """
    N, F = dout.shape[:2]
    W = cache.W.reshape(F, -1)                                 # (F, C*KH*KW)
    d = dout.reshape(N, F, -1)                                 # (N, F, H_out*W_out)
    dW = (d @ cache.cols.transpose(0, 2, 1)).sum(axis=0)       # sum over images of (F, positions) @ (positions, patch)
    db = d.sum(axis=(0, 2)) if cache.has_bias else None
    dx = col2im(W.T @ d, cache.x_shape, cache.W.shape[2:], cache.stride, cache.padding) if need_dx else None
    return dx, dW.reshape(cache.W.shape), db


# -- dense ---------------------------------------------------------------------------------------


class DenseCache(NamedTuple):
    x: np.ndarray
    W: np.ndarray


def dense_forward(x, W, b):
    """``out = x @ W + b``.  Shape: x (N, D), W (D, K), b (K,) -> out (N, K)"""
    return x @ W + b, DenseCache(x, W)


def dense_backward(dout, cache, need_dx):
    """``dW = x.T @ dout``, ``db = sum_n dout``, ``dx = dout @ W.T``.  Shape: dout (N, K) -> dx (N, D), dW (D, K), db (K,)"""
    x, W = cache
    return (dout @ W.T if need_dx else None), x.T @ dout, dout.sum(axis=0)


# -- pooling -------------------------------------------------------------------------------------


class MaxPoolCache(NamedTuple):
    x_shape: tuple
    kernel_size: tuple
    stride: tuple
    argmax: np.ndarray      # (N, C, H_out, W_out): offset i*KW + j of each window's first maximum


def maxpool2d_forward(x, kernel_size, stride):
    """Max over each window (no padding; a partial window at the edge is dropped), first maximum on ties.

    Shape: x (N, C, H, W) -> out (N, C, H_out, W_out),  H_out = (H - KH) // SH + 1
    """
    (KH, KW), (SH, SW) = kernel_size, stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW]
    windows = windows.reshape(windows.shape[:4] + (KH * KW,))      # (N, C, H_out, W_out, KH*KW)
    argmax = windows.argmax(axis=-1)                               # the first maximum of each window
    out = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
    return out, MaxPoolCache(x.shape, tuple(kernel_size), tuple(stride), argmax)


def maxpool2d_backward(dout, cache):
    """Each output gradient goes to the input that won its window.  Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W)"""
    (KH, KW), (SH, SW) = cache.kernel_size, cache.stride
    H_out, W_out = dout.shape[2:]
    dx = np.zeros(cache.x_shape, dout.dtype)
    for i in range(KH):                                            # window offset (i, j) of every window at once
        for j in range(KW):
            won = cache.argmax == i * KW + j                       # (N, C, H_out, W_out)
            dx[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW] += dout * won
    return dx


class AvgPoolCache(NamedTuple):
    x_shape: tuple
    kernel_size: tuple
    stride: tuple
    padding: tuple          # (ph, pw)


def avgpool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window of the zero-padded input; the padding zeros count (``count_include_pad=True``).

    Shape: x (N, C, H, W) -> out (N, C, H_out, W_out),  H_out = (H + 2*ph - KH) // SH + 1
    """
    (KH, KW), (SH, SW), (ph, pw) = kernel_size, stride, padding
    xp = pad_nchw(x, (ph, ph, pw, pw))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW]
    return windows.mean(axis=(4, 5)), AvgPoolCache(x.shape, tuple(kernel_size), tuple(stride), tuple(padding))


def avgpool2d_backward(dout, cache):
    """Each input of a window gets an equal share ``dout / (KH*KW)``.  Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W)"""
    N, C, H, W = cache.x_shape
    (KH, KW), (SH, SW), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dout.shape[2:]
    share = dout / dout.dtype.type(KH * KW)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dout.dtype)
    for i in range(KH):                                            # window offset (i, j) of every window at once
        for j in range(KW):
            dxp[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW] += share
    return dxp[:, :, ph:ph + H, pw:pw + W]


def global_avgpool2d_forward(x):
    """The mean of each feature map.  Shape: x (N, C, H, W) -> out (N, C); cache: x's shape"""
    return x.mean(axis=(2, 3)), x.shape


def global_avgpool2d_backward(dout, x_shape):
    """``dx[n, c, y, x] = dout[n, c] / (H*W)``.  Shape: dout (N, C) -> dx (N, C, H, W)"""
    N, C, H, W = x_shape
    return np.broadcast_to(dout[:, :, None, None] / dout.dtype.type(H * W), x_shape).copy()


# -- element-wise --------------------------------------------------------------------------------


def relu_forward(x):
    """``max(x, 0)``.  Shape: x (any) -> out (same shape and dtype); cache: the mask x > 0"""
    mask = x > 0
    return x * mask, mask


def relu_backward(dout, mask):
    return dout * mask


def leaky_relu_forward(x, negative_slope):
    """``x if x > 0 else negative_slope * x``; cache: the mask x > 0 and the slope."""
    mask = x > 0
    return np.where(mask, x, x * x.dtype.type(negative_slope)), (mask, negative_slope)


def leaky_relu_backward(dout, cache):
    mask, negative_slope = cache
    return np.where(mask, dout, dout * dout.dtype.type(negative_slope))


def tanh_forward(x):
    """``tanh(x)``; since d tanh / dx = 1 - tanh**2, the output is the cache."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    return dout * (1 - out * out)


def sigmoid_forward(x):
    """``1 / (1 + e^-x)`` from ``z = e^-|x|`` (at most 1, so nothing overflows); the output is the cache.

    ``1 / (1 + z)`` for x >= 0 and ``z / (1 + z)`` for x < 0 are the same number.
    """
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, x.dtype.type(1), z) / (1 + z)
    return out, out


def sigmoid_backward(dout, out):
    """``d s / dx = s * (1 - s)``"""
    return dout * out * (1 - out)


def flatten_forward(x):
    """Every axis but the batch axis into one.  Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...); cache: x's shape"""
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))), x.shape   # not -1: an empty batch has no size to infer from


def flatten_backward(dout, x_shape):
    return dout.reshape(x_shape)


def dropout_forward(x, p, rng):
    """Inverted dropout: zero each element with probability p, scale the rest by 1 / (1 - p).

    The mask is drawn from ``rng`` as uniforms of x's shape (float64 for float64 x,
    else float32), ``u >= p`` kept, so one seed gives one mask on every implementation.

    Shape: x (any) -> out (same shape and dtype); cache: the scaled mask (0 or 1/(1-p))
    """
    draw = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)   # Generator.random draws only these
    keep = rng.random(x.shape, dtype=draw) >= draw.type(p)
    mask = keep * x.dtype.type(1 / (1 - p))
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout * mask


# -- batch normalisation -------------------------------------------------------------------------
#
# Per channel, over its n values (N*H*W for (N, C, H, W), N for (N, C)), with
# xhat = (x - mu) / sigma, sigma = sqrt(mean((x - mu)^2) + eps), y = gamma * xhat + beta:
#
#     d mu / d x_j = 1/n,    d sigma / d x_j = (x_j - mu) / (n sigma) = xhat_j / n
#     d xhat_i / d x_j = (delta_ij - 1/n) / sigma - xhat_i / sigma * xhat_j / n
#     dx_j = sum_i gamma dy_i d xhat_i / d x_j = (gamma / sigma) / n * (n dy_j - sum_i dy_i - xhat_j sum_i dy_i xhat_i)
#     dgamma = sum_i dy_i xhat_i,    dbeta = sum_i dy_i
#     (evaluation: mu and sigma are fixed running statistics, so dx_j = gamma / sigma * dy_j)


class BatchNormCache(NamedTuple):
    xhat: np.ndarray
    inv_std: np.ndarray     # (C,)
    gamma: np.ndarray       # (C,)
    training: bool          # whether the batch's own statistics normalised (then dx goes through them)


def _channel_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, x):
    """A (C,) vector shaped to broadcast against x: (1, C, 1, 1) or (1, C)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Normalise each channel, then scale by gamma and shift by beta.

    In training, by the batch's mean and biased variance, and the running statistics
    come back updated, ``(1 - momentum) * running + momentum * batch`` (the unbiased
    variance, n / (n - 1) times the biased one, for ``running_var``); in evaluation,
    by the running statistics, which come back as they were.

    Shape: x (N, C, H, W) or (N, C); gamma, beta, running_mean, running_var (C,)
           -> out (like x), running_mean, running_var (C,), cache
    """
    axes = _channel_axes(x)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        n = x.size // x.shape[1]
        running_mean = running_mean * (1 - momentum) + momentum * mean.astype(running_mean.dtype)
        running_var = running_var * (1 - momentum) + momentum * (var * (n / (n - 1))).astype(running_var.dtype)
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
    out = xhat * _per_channel(gamma, x) + _per_channel(beta, x)
    return out, running_mean, running_var, BatchNormCache(xhat, inv_std, gamma, training)


def batchnorm_backward(dout, cache, need_dx):
    """The closed form above.  Shape: dout like x -> dx (like x) or None, dgamma (C,), dbeta (C,)"""
    xhat, axes = cache.xhat, _channel_axes(dout)
    n = dout.size // dout.shape[1]
    dbeta, dgamma = dout.sum(axis=axes), (dout * xhat).sum(axis=axes)
    dx = None
    if need_dx and cache.training:         # through the batch statistics
        dx = _per_channel(cache.gamma * cache.inv_std / n, dout) * (
            n * dout - _per_channel(dbeta, dout) - xhat * _per_channel(dgamma, dout))
    elif need_dx:                          # fixed running statistics: an affine map
        dx = dout * _per_channel(cache.gamma * cache.inv_std, dout)
    return dx, dgamma, dbeta


# -- two layers as one operation -------------------------------------------------------------------
#
# A batch norm and the max-pool after it, as ``Sequential`` runs them on the fast engine (minicnn/nn/order.py):
# here they are just the two functions in turn; the fast engine does the same in fewer passes over memory.


def batchnorm_maxpool2d_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, kernel_size,
                                stride):
    """``maxpool2d_forward(batchnorm_forward(x, ...)[0], kernel_size, stride)``.

    Shape: x (N, C, H, W) -> out (N, C, H_out, W_out), running_mean, running_var, (batch norm's cache, pool's cache)
    """
    y, running_mean, running_var, norm = batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                                                           momentum, eps)
    out, pooled = maxpool2d_forward(y, kernel_size, stride)
    return out, running_mean, running_var, (norm, pooled)


def batchnorm_maxpool2d_backward(dout, cache, need_dx):
    """``batchnorm_backward(maxpool2d_backward(dout, ...), ..., need_dx)``.  Shape: dout (N, C, H_out, W_out) -> dx, dgamma, dbeta"""
    norm, pooled = cache
    return batchnorm_backward(maxpool2d_backward(dout, pooled), norm, need_dx)


# -- optimizer updates: param and the arrays of state change in place ------------------------------
#
# Each scalar is made an array of the parameter's dtype first (``np.asarray(lr, dtype)``),
# so that a float32 parameter is never promoted to float64.


def sgd_update(param, grad, state, *, lr, momentum, nesterov, weight_decay):
    """``torch.optim.SGD`` (dampening 0); ``state["velocity"]`` (zeros at first) with momentum.

        g = g + weight_decay * p;  v = momentum * v + g;  g = g + momentum * v if nesterov else v;  p = p - lr * g
    """
    as_param = lambda value: np.asarray(value, dtype=param.dtype)
    g = grad.astype(param.dtype, copy=False)
    if weight_decay:
        g = g + as_param(weight_decay) * param
    if momentum:
        v = state["velocity"]
        v *= as_param(momentum)
        v += g
        g = g + as_param(momentum) * v if nesterov else v
    param -= as_param(lr) * g


def adam_update(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """``torch.optim.Adam`` (``AdamW`` with ``decoupled``) at step t = ``step`` (1, 2, ...).

    ``state``: ``exp_avg`` (m), ``exp_avg_sq`` (v) and, for amsgrad, ``max_exp_avg_sq`` (zeros at first).

        p = p * (1 - lr * weight_decay)  if decoupled  else  g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g;   v_max = max(v_max, v) (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """
    as_param = lambda value: np.asarray(value, dtype=param.dtype)
    m, v, v_max = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    if decoupled and weight_decay:
        param *= as_param(1 - lr * weight_decay)
    g = grad.astype(param.dtype, copy=False)
    if weight_decay and not decoupled:
        g = g + as_param(weight_decay) * param
    m[...] = as_param(beta1) * m + as_param(1 - beta1) * g
    v[...] = as_param(beta2) * v + as_param(1 - beta2) * g * g
    if v_max is not None:
        v_max[...] = np.maximum(v_max, v)
        v = v_max
    denom = np.sqrt(v) / as_param(bias_correction2_sqrt) + as_param(eps)
    param -= as_param(step_size) * m / denom


def rmsprop_update(param, grad, state, *, lr, alpha, eps, momentum, weight_decay):
    """``torch.optim.RMSprop`` (not centred); ``state``: ``square_avg`` (s) and, with momentum, ``momentum_buffer`` (b).

        g = g + weight_decay * p;  s = alpha * s + (1 - alpha) * g * g;  avg = sqrt(s) + eps
        b = momentum * b + g / avg;  p = p - lr * b     with momentum;     p = p - lr * g / avg  without
    """
    as_param = lambda value: np.asarray(value, dtype=param.dtype)
    s, b = state["square_avg"], state.get("momentum_buffer")
    g = grad.astype(param.dtype, copy=False)
    if weight_decay:
        g = g + as_param(weight_decay) * param
    s[...] = as_param(alpha) * s + as_param(1 - alpha) * g * g
    avg = np.sqrt(s) + as_param(eps)
    if momentum:
        b[...] = as_param(momentum) * b + g / avg
        param -= as_param(lr) * b
    else:
        param -= as_param(lr) * g / avg
