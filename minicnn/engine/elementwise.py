"""Element-wise passes into reused buffers, in the memory layout of their input."""
import numpy as np

from minicnn.engine import threads
from minicnn.engine.buffers import recycled, recycled_like, scratch, scratch_like


class FastReLU:
    """``max(x, 0)`` and its backward ``dout * (x > 0)``, written into buffers reused between calls.

    Replaces the textbook ``x * (x > 0)`` of ``minicnn.nn.ReLU``, which allocates two arrays per call.
    """

    def __init__(self):
        self._buffers = {}
        self._mask = None

    def forward(self, x):
        """Shape: x (any) -> out (same shape, dtype and memory layout)"""
        mask = self._mask = scratch_like(self._buffers, "mask", x, bool)
        out, zeros = recycled_like(self._buffers, "out", x), _zeros_like_one_example(x, self._buffers)
        if x.ndim == 0:
            np.greater(x, 0, out=mask)
            return np.maximum(x, zeros, out=out)

        def part(lo, hi):                                                # examples lo:hi
            np.greater(x[lo:hi], 0, out=mask[lo:hi])
            np.maximum(x[lo:hi], zeros, out=out[lo:hi])

        threads.over_rows(part, len(x), x[:1].size)
        return out

    def backward(self, dout):
        dx, mask = recycled_like(self._buffers, "dx", dout), self._mask
        if dout.ndim == 0:
            return np.multiply(dout, mask, out=dx)
        threads.over_rows(lambda lo, hi: np.multiply(dout[lo:hi], mask[lo:hi], out=dx[lo:hi]), len(dout), dout[:1].size)
        return dx


def _zeros_like_one_example(x, store):
    """Zeros shaped like ``x[:1]`` in its memory order, to broadcast over the batch; replaces the scalar 0.

    ``np.maximum(x, 0)`` takes a loop for a scalar operand that is several times
    slower than its loop for two arrays; one example's worth of zeros stays in cache.
    """
    if x.ndim == 0:
        return x.dtype.type(0)
    key = (x.shape[1:], x.strides[1:], x.dtype)
    entry = store.get("zeros")
    if entry is None or entry[0] != key:
        entry = store["zeros"] = (key, np.zeros_like(x[:1]))
    return entry[1]


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


class FastLeakyReLU:
    """``x if x > 0 else slope * x`` and its backward, into reused buffers in x's memory layout.

    Replaces the textbook ``np.where(x > 0, x, slope * x)`` of ``minicnn.nn.LeakyReLU`` (three arrays per call).
    """

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope
        self._buffers = {}
        self._slope = None

    def forward(self, x):
        """Shape: x (any) -> out (same shape, dtype and memory layout)

        The local slope (1 where x > 0, negative_slope elsewhere) is built exactly from two
        masks, without masked copies (which branch on every element of a random sign pattern):
        ``slope = (x <= 0) * negative_slope + (x > 0)``; then ``out = x * slope``, ``dx = dout * slope``.
        """
        s = self._buffers
        mask = np.less_equal(x, 0, out=scratch_like(s, "mask", x, bool))
        self._slope = np.multiply(mask, x.dtype.type(self.negative_slope), out=scratch_like(s, "slope", x, x.dtype))
        np.add(self._slope, np.logical_not(mask, out=mask), out=self._slope)
        return np.multiply(x, self._slope, out=recycled_like(s, "out", x))

    def backward(self, dout):
        return np.multiply(dout, self._slope, out=recycled_like(self._buffers, "dx", dout))


class FastTanh:
    """``tanh(x)``, keeping its derivative ``1 - tanh(x)**2`` for backward ``dout * (1 - out**2)``.

    Replaces the allocating expressions of ``minicnn.nn.Tanh``; outputs into reused buffers, in x's memory layout.
    """

    def __init__(self):
        self._buffers = {}
        self._slope = None

    def forward(self, x):
        s = self._buffers
        out = np.tanh(x, out=recycled_like(s, "out", x))
        self._slope = np.multiply(out, out, out=scratch_like(s, "slope", x, x.dtype))
        np.subtract(x.dtype.type(1), self._slope, out=self._slope)
        return out

    def backward(self, dout):
        return np.multiply(dout, self._slope, out=recycled_like(self._buffers, "dx", dout))


class FastSigmoid:
    """The stable logistic from ``z = exp(-|x|)`` (never overflows), keeping its derivative ``s * (1 - s)``.

    Replaces the textbook ``np.where(x >= 0, 1, z) / (1 + z)`` of ``minicnn.nn.Sigmoid``:
    the same formula, written into buffers reused between calls.
    """

    def __init__(self):
        self._buffers = {}
        self._slope = None

    def forward(self, x):
        s, one = self._buffers, x.dtype.type(1)
        z = scratch_like(s, "z", x, x.dtype)
        np.exp(np.negative(np.abs(x, out=z), out=z), out=z)                  # z = exp(-|x|) in (0, 1]
        nonnegative = np.greater_equal(x, 0, out=scratch_like(s, "nonnegative", x, bool))
        out = np.maximum(z, nonnegative, out=recycled_like(s, "out", x))   # numerator: 1 for x >= 0 (z <= 1), z for x < 0
        np.divide(out, np.add(z, one, out=z), out=out)
        self._slope = np.subtract(one, out, out=scratch_like(s, "slope", x, x.dtype))
        np.multiply(self._slope, out, out=self._slope)
        return out

    def backward(self, dout):
        return np.multiply(dout, self._slope, out=recycled_like(self._buffers, "dx", dout))


class FastDropout:
    """Inverted dropout into reused buffers; replaces the textbook mask of ``minicnn.nn.Dropout``.

    The uniforms are drawn exactly as the textbook draws them (``rng.random`` of x's
    shape, in C order), so one seed gives the same mask on both engines.  The
    scaled mask ``(u >= p) / (1 - p)`` overwrites the uniforms and serves backward.
    """

    def __init__(self):
        self._buffers = {}
        self._mask = None

    def forward(self, x, p, rng, draw_dtype):
        """Shape: x (any) -> out (same shape, dtype and memory layout)"""
        s = self._buffers
        u = rng.random(dtype=draw_dtype, out=scratch(s, "u", x.shape, draw_dtype))
        keep = np.greater_equal(u, draw_dtype.type(p), out=scratch(s, "keep", x.shape, bool))
        self._mask = np.multiply(keep, x.dtype.type(1 / (1 - p)), out=scratch(s, "mask", x.shape, x.dtype))
        return np.multiply(x, self._mask, out=recycled_like(s, "out", x))

    def backward(self, dout):
        return np.multiply(dout, self._mask, out=recycled_like(self._buffers, "dx", dout))
