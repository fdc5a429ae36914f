"""Element-wise passes into reused buffers, in the memory layout of their input."""
import numpy as np

from minicnn.engine.buffers import recycled, recycled_like, scratch_like


class FastReLU:
    """``max(x, 0)`` and its backward ``dout * (x > 0)``, written into buffers reused between calls.

    Replaces the textbook ``x * (x > 0)`` of ``minicnn.nn.ReLU``, which allocates two arrays per call.
    """

    def __init__(self):
        self._buffers = {}
        self._mask = None

    def forward(self, x):
        """Shape: x (any) -> out (same shape, dtype and memory layout)"""
        self._mask = np.greater(x, 0, out=scratch_like(self._buffers, "mask", x, bool))
        return np.maximum(x, x.dtype.type(0), out=recycled_like(self._buffers, "out", x))

    def backward(self, dout):
        return np.multiply(dout, self._mask, out=recycled_like(self._buffers, "dx", dout))


def unflatten_like(dout, x_shape, x_strides, store):
    """``dout.reshape(x_shape)``, but stored channels-last when x was; replaces Flatten's plain reshape.

    A conv or pool handed Flatten a channels-last view; giving dx back the same
    way keeps their backward on the fast layout.

    Shape: dout (N, C*H*W), x_shape (N, C, H, W) -> dx (N, C, H, W)
    """
    dx = dout.reshape(x_shape)
    if len(x_shape) != 4 or not x_strides[1] < min(x_strides[2], x_strides[3]):
        return dx
    N, C, H, W = x_shape
    out = recycled(store, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
    np.copyto(out, dx)
    return out
