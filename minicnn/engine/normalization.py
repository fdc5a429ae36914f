"""The fast batch normalisation: ``batchnorm_forward`` and ``batchnorm_backward`` of ``minicnn.nn.textbook``, same signatures.

Everything is computed on a channels-last view of the batch (``x.transpose(0, 2, 3, 1)``
for (N, C, H, W), x itself for (N, D)), so the per-channel vectors broadcast
along the last axis and, for the channels-last activations that conv and pool
hand on, every pass runs along rows of W*C numbers (``_rows``).  The centred
input (kept for backward, in the cache) and the outputs live in pooled buffers;
the output is written in x's memory layout.  A sum of products (the variance's
squares, dout times the centred input) is one ``np.einsum`` pass, with no array
of the products.

In a part of a batch split over the threads whole model per part
(``threads.run_batch_parts(..., together=True)``), each per-channel sum and the
count n are added over the parts (``threads.sum_over_parts``): every part
normalises by the whole batch's statistics and its dx goes through them, while
dgamma and dbeta are the part's own shares, which the split adds up like any
other parameter's gradient.
"""
from typing import NamedTuple

import numpy as np

from minicnn.engine import threads
from minicnn.engine.buffers import buffer_like


def _channels_last(a):
    """(N, C, H, W) -> its (N, H, W, C) view; (N, D) -> itself."""
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _channels_first(v):
    """Inverse of ``_channels_last``."""
    return v.transpose(0, 3, 1, 2) if v.ndim == 4 else v


def _rows(a):
    """A channels-last batch as long rows: (N, H, W, C) -> (N, H, W*C) (a view for conv and pool outputs); (N, D) as is.

    Per-channel vectors tiled W times (``_tiled``) then broadcast along rows of W*C
    numbers, where along the channel axis alone NumPy would loop over runs of C.
    A batch whose W and C axes cannot merge without a copy is returned as it is.
    """
    if a.ndim == 4 and (a.shape[3] == 1 or a.strides[2] == a.shape[3] * a.strides[3]):   # W and C merge: a view
        return a.reshape(a.shape[0], a.shape[1], -1)
    return a                                  # (N, D), or a batch not stored channels-last: runs of C as they are


def _tiled(vec, rows):
    """A per-channel vector repeated to the length of one row of ``_rows``."""
    return np.tile(vec, rows.shape[-1] // vec.shape[0])


def _share(rows, lo, hi):
    """One thread's share of a per-channel sum: examples lo:hi summed over everything but the last axis."""
    return np.add.reduce(rows[lo:hi], axis=tuple(range(rows.ndim - 1)))


def _chunked(fn, rows):
    """``fn(a, b)`` over chunks of a part's examples that stay in the cache across the passes ``fn`` makes;
    the part returns the chunks' results in order.  Replaces one call ``fn(lo, hi)`` for a part [lo, hi).
    """
    def part(lo, hi):
        results = []
        threads.in_chunks(lambda a, b: results.append(fn(a, b)), lo, hi, 2 * rows[:1].size)
        return results
    return part


def _flat(lists):
    """The chunks' results of every part, in order."""
    return [item for results in lists for item in results]


def _add_shares(shares, C, out):
    """The threads' shares of a per-channel sum, added in order, then the W positions of each channel. -> out (C,)"""
    along = shares[0] if len(shares) == 1 else np.add.reduce(np.stack(shares), axis=0)   # (W*C,)
    return np.add.reduce(along.reshape(-1, C), axis=0, out=out)


class BatchNormCache(NamedTuple):
    centred: np.ndarray     # x - mean, channels-last (the normalised input is centred * inv_std)
    inv_std: np.ndarray     # (C,)
    gamma: np.ndarray       # (C,)
    training: bool          # whether the batch's own statistics normalised (then dx goes through them)


def _running_update(running, batch, momentum):
    """``(1 - momentum) * running + momentum * batch``, in the running statistic's dtype."""
    return running * (1 - momentum) + momentum * batch.astype(running.dtype)


def _dot_share(a, b, lo, hi):
    """One share of a per-channel sum of products: ``sum(a * b)`` over examples lo:hi and all but the last axis,
    in one pass with no array of the products."""
    axes = "abcdefgh"[:a.ndim - 1] + "z"                    # e.g. "abz,abz->z": every axis but the last summed
    return np.einsum(f"{axes},{axes}->z", a[lo:hi], b[lo:hi])


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Normalise per channel: in training by the batch's statistics (and update the running ones), else by the running ones.

    Returns (out, running_mean, running_var, cache), the running statistics new arrays
    (the same ones in evaluation), as ``minicnn.nn.textbook.batchnorm_forward``.
    The cache keeps the centred input ``x - mean`` and ``inv_std`` rather than their
    product xhat: ``out = centred * (gamma * inv_std) + beta`` then takes two passes, not three.

    Shape: x (N, C, H, W) or (N, C); gamma, beta, running_mean, running_var (C,) -> out like x, in x's memory layout
    """
    v = _channels_last(x)
    C, dtype = v.shape[-1], x.dtype
    n = v.size // C
    if training:   # another part's layer may write the running statistics once the last sum is made
        running_mean, running_var = running_mean.copy(), running_var.copy()
    centred = buffer_like("bn.centred", v)
    out = buffer_like("bn.out", v)
    rows, centred_rows, out_rows = _rows(v), _rows(centred), _rows(out)
    parts = threads.parts(len(rows), rows[0].size)   # the same parts for every pass: 3 hand-offs in training
    if training:
        mean = _add_shares(threads.run(lambda lo, hi: _share(rows, lo, hi), parts), C, np.empty(C, dtype))
        mean, n = threads.sum_over_parts(mean, n)
        mean *= dtype.type(1 / n)
    else:
        mean, var = running_mean.astype(dtype, copy=False), running_var.astype(dtype, copy=False)
    mean_t = _tiled(mean, rows)

    def centre(lo, hi):                                  # centred = x - mean; in training, the share of sum(centred^2)
        np.subtract(rows[lo:hi], mean_t, out=centred_rows[lo:hi])
        if training:
            return _dot_share(centred_rows, centred_rows, lo, hi)

    squares = _flat(threads.run(_chunked(centre, rows), parts))
    if training:
        var, = threads.sum_over_parts(_add_shares(squares, C, np.empty(C, dtype)))
        var *= dtype.type(1 / n)
        running_mean = _running_update(running_mean, mean, momentum)
        running_var = _running_update(running_var, var * (n / (n - 1)), momentum)   # the unbiased variance
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    scale_t, beta_t = _tiled(gamma * inv_std, rows), _tiled(beta, rows)

    def scale(lo, hi):
        np.multiply(centred_rows[lo:hi], scale_t, out=out_rows[lo:hi])
        np.add(out_rows[lo:hi], beta_t, out=out_rows[lo:hi])

    threads.run(_chunked(scale, rows), parts)
    return _channels_first(out), running_mean, running_var, BatchNormCache(centred, inv_std, gamma, training)


def batchnorm_backward(dout, cache, need_dx):
    """-> (dx, dgamma, dbeta); dx None without need_dx.

    With xhat = centred * inv_std: ``dgamma = sum(dout * xhat) = inv_std * sum(dout * centred)``,
    ``dbeta = sum(dout)`` per channel.  Training:
    ``dx = gamma * inv_std * (dout - dbeta / n - centred * (inv_std * dgamma / n))``;
    evaluation (fixed statistics): ``dx = dout * gamma * inv_std``.
    """
    dv, centred = _channels_last(dout), cache.centred
    C, dtype = dv.shape[-1], dout.dtype
    n = dv.size // C
    dx = buffer_like("bn.dx", centred)
    d_rows, centred_rows, dx_rows = _rows(dv), _rows(centred), _rows(dx)
    parts = threads.parts(len(d_rows), d_rows[0].size)   # the same parts for both passes: 2 hand-offs

    def sums(lo, hi):                                    # the shares of sum(dout) and sum(dout * centred)
        return _share(d_rows, lo, hi), _dot_share(d_rows, centred_rows, lo, hi)

    shares = _flat(threads.run(_chunked(sums, d_rows), parts))
    dbeta = _add_shares([s[0] for s in shares], C, np.empty(C, dtype))
    dgamma = _add_shares([s[1] for s in shares], C, np.empty(C, dtype))
    dgamma *= cache.inv_std
    if not need_dx:
        return None, dgamma, dbeta
    scale_t = _tiled(cache.gamma * cache.inv_std, d_rows)
    if cache.training:
        all_dgamma, all_dbeta, n = threads.sum_over_parts(dgamma, dbeta, n)   # the whole batch's, in a split
        k_centred = _tiled(all_dgamma * cache.inv_std * dtype.type(1 / n), d_rows)
        k_const = _tiled(all_dbeta * dtype.type(1 / n), d_rows)

        def part(lo, hi):
            np.multiply(centred_rows[lo:hi], k_centred, out=dx_rows[lo:hi])
            np.subtract(d_rows[lo:hi], dx_rows[lo:hi], out=dx_rows[lo:hi])
            np.subtract(dx_rows[lo:hi], k_const, out=dx_rows[lo:hi])
            np.multiply(dx_rows[lo:hi], scale_t, out=dx_rows[lo:hi])
    else:
        def part(lo, hi):
            np.multiply(d_rows[lo:hi], scale_t, out=dx_rows[lo:hi])
    threads.run(_chunked(part, d_rows), parts)
    return _channels_first(dx), dgamma, dbeta
