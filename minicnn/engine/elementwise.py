"""Element-wise passes into pooled buffers, in the memory layout of their input.

Each function has the signature of its twin in ``minicnn.nn.textbook`` and
replaces it; what a backward needs (a mask, a local slope) is its cache.
"""
from typing import NamedTuple

import numpy as np

from minicnn.engine import threads
from minicnn.engine.buffers import buffer, buffer_like


def relu_forward(x):
    """``max(x, 0)``, keeping the mask ``x > 0``; replaces the textbook ``x * (x > 0)`` (two arrays per call).

    Shape: x (any) -> out (same shape, dtype and memory layout), cache (the mask)
    """
    mask = buffer_like("relu.mask", x, bool)
    out, zeros = buffer_like("relu.out", x), _zeros_like_one_example(x)
    if x.ndim == 0:
        np.greater(x, 0, out=mask)
        return np.maximum(x, zeros, out=out), mask

    def part(lo, hi):                                                # examples lo:hi
        np.greater(x[lo:hi], 0, out=mask[lo:hi])
        np.maximum(x[lo:hi], zeros, out=out[lo:hi])

    threads.over_rows(lambda lo, hi: threads.in_chunks(part, lo, hi, x[:1].size), len(x), x[:1].size)
    return out, mask


def relu_backward(dout, mask):
    """``dout * mask``.  Shape: dout like x -> dx"""
    dx = buffer_like("relu.dx", dout)
    if dout.ndim == 0:
        return np.multiply(dout, mask, out=dx)
    threads.over_rows(lambda lo, hi: np.multiply(dout[lo:hi], mask[lo:hi], out=dx[lo:hi]), len(dout), dout[:1].size)
    return dx


def _zeros_like_one_example(x):
    """Zeros shaped like ``x[:1]`` in its memory order, to broadcast over the batch; replaces the scalar 0.

    ``np.maximum(x, 0)`` takes a loop for a scalar operand that is several times
    slower than its loop for two arrays; one example's worth of zeros stays in cache.
    """
    if x.ndim == 0:
        return x.dtype.type(0)
    return _ZEROS.get(x)


class _Zeros:
    """Read-only zeros shaped like one example of x, kept by (shape, strides, dtype)."""

    def __init__(self):
        self._arrays = {}

    def get(self, x):
        key = (x.shape[1:], x.strides[1:], x.dtype)
        zeros = self._arrays.get(key)
        if zeros is None:
            if len(self._arrays) > 64:
                self._arrays.clear()
            zeros = self._arrays[key] = np.zeros_like(x[:1])
        return zeros


_ZEROS = _Zeros()


def _slope_backward(name, dout, slope):
    """``dout * slope``, the backward of every element-wise map that keeps its local slope."""
    return np.multiply(dout, slope, out=buffer_like(name, dout))


def leaky_relu_forward(x, negative_slope):
    """``x if x > 0 else negative_slope * x``, keeping the local slope; replaces the textbook ``np.where`` (three arrays).

    The local slope (1 where x > 0, negative_slope elsewhere) is built exactly from two
    masks, without masked copies (which branch on every element of a random sign pattern):
    ``slope = (x <= 0) * negative_slope + (x > 0)``; then ``out = x * slope``, ``dx = dout * slope``.

    Shape: x (any) -> out (same shape, dtype and memory layout), cache (the slope)
    """
    mask = np.less_equal(x, 0, out=buffer_like("leaky.mask", x, bool))
    slope = np.multiply(mask, x.dtype.type(negative_slope), out=buffer_like("leaky.slope", x))
    np.add(slope, np.logical_not(mask, out=mask), out=slope)
    return np.multiply(x, slope, out=buffer_like("leaky.out", x)), slope


def leaky_relu_backward(dout, slope):
    return _slope_backward("leaky.dx", dout, slope)


def tanh_forward(x):
    """``tanh(x)``, keeping its derivative ``1 - tanh(x)**2``; replaces the allocating textbook expressions.

    Shape: x (any) -> out (same shape, dtype and memory layout), cache (the slope)
    """
    out = np.tanh(x, out=buffer_like("tanh.out", x))
    slope = np.multiply(out, out, out=buffer_like("tanh.slope", x))
    np.subtract(x.dtype.type(1), slope, out=slope)
    return out, slope


def tanh_backward(dout, slope):
    return _slope_backward("tanh.dx", dout, slope)


def sigmoid_forward(x):
    """The stable logistic from ``z = exp(-|x|)`` (never overflows), keeping its derivative ``s * (1 - s)``.

    Replaces the textbook ``np.where(x >= 0, 1, z) / (1 + z)``: the same formula, written into pooled buffers.

    Shape: x (any) -> out (same shape, dtype and memory layout), cache (the slope)
    """
    one = x.dtype.type(1)
    z = buffer_like("sigmoid.z", x)
    np.exp(np.negative(np.abs(x, out=z), out=z), out=z)                  # z = exp(-|x|) in (0, 1]
    nonnegative = np.greater_equal(x, 0, out=buffer_like("sigmoid.nonnegative", x, bool))
    out = np.maximum(z, nonnegative, out=buffer_like("sigmoid.out", x))  # numerator: 1 for x >= 0 (z <= 1), z for x < 0
    np.divide(out, np.add(z, one, out=z), out=out)
    slope = np.subtract(one, out, out=buffer_like("sigmoid.slope", x))
    np.multiply(slope, out, out=slope)
    return out, slope


def sigmoid_backward(dout, slope):
    return _slope_backward("sigmoid.dx", dout, slope)


def dropout_forward(x, p, rng):
    """Inverted dropout into pooled buffers; replaces the textbook mask.

    The uniforms are drawn exactly as the textbook draws them (``rng.random`` of x's
    shape, in C order, float64 for float64 x and float32 otherwise), so one seed
    gives the same mask on every implementation.  The scaled mask ``(u >= p) / (1 - p)``
    serves backward.

    Shape: x (any) -> out (same shape, dtype and memory layout), cache (the scaled mask)
    """
    draw = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)   # Generator.random draws only these
    u = rng.random(dtype=draw, out=buffer("dropout.u", x.shape, draw))
    keep = np.greater_equal(u, draw.type(p), out=buffer("dropout.keep", x.shape, bool))
    mask = np.multiply(keep, x.dtype.type(1 / (1 - p)), out=buffer("dropout.mask", x.shape, x.dtype))
    return np.multiply(x, mask, out=buffer_like("dropout.out", x)), mask


def dropout_backward(dout, mask):
    return np.multiply(dout, mask, out=buffer_like("dropout.dx", dout))


class FlattenCache(NamedTuple):
    x_shape: tuple
    x_strides: tuple


def flatten_forward(x):
    """Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...), a view where the layout allows; cache."""
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))), FlattenCache(x.shape, x.strides)


def flatten_backward(dout, cache):
    """``dout.reshape(x_shape)``, but stored channels-last when x was; replaces the textbook's plain reshape.

    A conv or pool handed Flatten a channels-last view; giving dx back the same
    way keeps their backward on the fast layout.

    Shape: dout (N, C*H*W) -> dx (N, C, H, W)
    """
    x_shape, x_strides = cache
    dx = dout.reshape(x_shape)
    if len(x_shape) != 4 or not x_strides[1] < min(x_strides[2], x_strides[3]):
        return dx
    N, C, H, W = x_shape
    out = buffer("flatten.dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
    np.copyto(out, dx)
    return out
