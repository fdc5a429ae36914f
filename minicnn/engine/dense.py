"""The fast fully connected layer: replaces ``x @ W + b`` and its backward in ``minicnn.nn.textbook``, same signatures.

Products go to BLAS into given buffers.
"""
from typing import NamedTuple

import numpy as np

from minicnn.engine.blas import column_sums, gemm
from minicnn.engine.buffers import buffer


class DenseCache(NamedTuple):
    x: np.ndarray           # (N, D)
    W: np.ndarray           # (D, K)


def dense_forward(x, W, b):
    """``x @ W + b`` as one BLAS call accumulating onto the broadcast bias.

    Shape: x (N, D), W (D, K), b (K,) -> out (N, K), cache
    """
    out = buffer("dense.out", (x.shape[0], W.shape[1]), x.dtype)
    out[...] = b
    return gemm(x, W, out, accumulate=True), DenseCache(x, W)


def dense_backward(dout, cache, need_dx):
    """-> (dx or None, dW, db): ``dW = x.T @ dout``, ``db = dout.sum(0)``, ``dx = dout @ W.T``.

    Shape: dout (N, K) -> dx (N, D), dW (D, K), db (K,)
    """
    x, W = cache
    if x.dtype == dout.dtype:
        dW = gemm(x.T, dout, buffer("dense.dW", W.shape, dout.dtype))
    else:
        dW = x.T @ dout
    db = column_sums(np.ascontiguousarray(dout))
    dx = gemm(dout, W.T, buffer("dense.dx", x.shape, dout.dtype)) if need_dx else None
    return dx, dW, db
