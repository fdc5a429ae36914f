"""The fast fully connected layer: replaces ``x @ W + b`` and its backward in ``minicnn.nn.Dense``.

Products go to BLAS into given buffers; ``dW`` is written straight into the layer's gradient array.
"""
import numpy as np

from minicnn.engine.blas import column_sums, gemm


def dense_forward(x, W, b):
    """``x @ W + b`` as one BLAS call accumulating onto the broadcast bias.

    Shape: x (N, D), W (D, K), b (K,) -> (N, K)
    """
    out = np.empty((x.shape[0], W.shape[1]), x.dtype)
    out[...] = b
    return gemm(x, W, out, accumulate=True)


def dense_backward(x, W, dout, dW, store, need_dx=True):
    """-> (dx or None, dW, db): ``dW = x.T @ dout`` (into ``dW`` when it fits), ``db = dout.sum(0)``, ``dx = dout @ W.T``.

    Shape: x (N, D), W (D, K), dout (N, K) -> dx (N, D), dW (D, K), db (K,)
    """
    if dW is not None and dW.shape == W.shape and dW.dtype == x.dtype == dout.dtype:
        gemm(x.T, dout, dW)
    else:
        dW = x.T @ dout
    db = column_sums(np.ascontiguousarray(dout), store)
    dx = gemm(dout, W.T, np.empty(x.shape, dout.dtype)) if need_dx else None
    return dx, dW, db
