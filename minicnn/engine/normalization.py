"""The fast batch normalisation: replaces the textbook forward and backward of ``minicnn.nn.BatchNorm2D`` / ``BatchNorm1D``.

Everything is computed on a channels-last view of the batch (``x.transpose(0, 2, 3, 1)``
for (N, C, H, W), x itself for (N, D)), so the per-channel vectors broadcast
along the last axis and, for the channels-last activations that conv and pool
hand on, every pass runs over contiguous memory.  Per-channel sums of a
contiguous batch are one BLAS product ``ones(M) @ rows(M, C)``.  The
normalised input ``xhat`` (kept for backward) and the outputs live in buffers
reused between calls; the output is written in x's memory layout.
"""
import numpy as np

from minicnn.engine.buffers import recycled_like, scratch, scratch_like


def _channels_last(a):
    """(N, C, H, W) -> its (N, H, W, C) view; (N, D) -> itself."""
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _channels_first(v):
    """Inverse of ``_channels_last``."""
    return v.transpose(0, 3, 1, 2) if v.ndim == 4 else v


def channel_sums(v, out, store):
    """``out[c] = sum of v[..., c]``: one BLAS product with a vector of ones when v is contiguous.

    Shape: v (..., C) -> out (C,)
    """
    C = v.shape[-1]
    if v.flags.c_contiguous:
        M = v.size // C
        ones = store.get("ones")
        if ones is None or ones.shape != (M,) or ones.dtype != v.dtype:
            ones = store["ones"] = np.ones(M, v.dtype)
        return np.matmul(ones, v.reshape(M, C), out=out)
    return np.add.reduce(v, axis=tuple(range(v.ndim - 1)), out=out)


class FastBatchNorm:
    """Forward and backward of one batch-norm layer, with the buffers they reuse."""

    def __init__(self):
        self._buffers = {}
        self._xhat = self._inv_std = self._gamma = None
        self._training = True

    def forward(self, x, gamma, beta, eps, mean=None, var=None):
        """Normalise per channel; with ``mean=var=None`` (training) from the batch's own statistics.

        Returns (out, mean, var): the statistics used (the batch's biased variance in training).

        Shape: x (N, C, H, W) or (N, C); gamma, beta, mean, var (C,) -> out like x, in x's memory layout
        """
        s, v = self._buffers, _channels_last(x)
        C, dtype = v.shape[-1], x.dtype
        n = v.size // C
        xhat = scratch_like(s, "xhat", v, dtype)
        out = recycled_like(s, "out", v)
        self._training = mean is None
        if self._training:
            mean = channel_sums(v, scratch(s, "mean", (C,), dtype), s)
            mean *= dtype.type(1 / n)
            np.subtract(v, mean, out=xhat)                                   # centred
            var = channel_sums(np.multiply(xhat, xhat, out=out), scratch(s, "var", (C,), dtype), s)  # out as scratch
            var *= dtype.type(1 / n)
        else:
            np.subtract(v, mean, out=xhat)
        self._inv_std = 1 / np.sqrt(var + dtype.type(eps))
        np.multiply(xhat, self._inv_std, out=xhat)
        self._xhat, self._gamma = xhat, gamma
        np.multiply(xhat, gamma, out=out)
        np.add(out, beta, out=out)
        return _channels_first(out), mean, var

    def backward(self, dout, need_dx=True):
        """-> (dx, dgamma, dbeta); dx None without need_dx.

        Training: ``dx = gamma * inv_std / n * (n * dout - dbeta - xhat * dgamma)`` per channel;
        evaluation (fixed statistics): ``dx = dout * gamma * inv_std``.
        """
        s, dv, xhat = self._buffers, _channels_last(dout), self._xhat
        C, dtype = dv.shape[-1], dout.dtype
        n = dv.size // C
        dx = recycled_like(s, "dx", xhat)
        dbeta = channel_sums(dv, np.empty(C, dtype), s)
        dgamma = channel_sums(np.multiply(dv, xhat, out=dx), np.empty(C, dtype), s)   # dx as scratch
        if not need_dx:
            return None, dgamma, dbeta
        if self._training:
            np.multiply(xhat, dgamma * dtype.type(1 / n), out=dx)
            np.subtract(dv, dx, out=dx)
            np.subtract(dx, dbeta * dtype.type(1 / n), out=dx)
            np.multiply(dx, self._gamma * self._inv_std, out=dx)
        else:
            np.multiply(dv, self._gamma * self._inv_std, out=dx)
        return _channels_first(dx), dgamma, dbeta
