"""The fast batch normalisation: ``batchnorm_forward`` and ``batchnorm_backward`` of ``minicnn.nn.textbook``, same signatures.

Everything is computed on a channels-last view of the batch (``x.transpose(0, 2, 3, 1)``
for (N, C, H, W), x itself for (N, D)), so the per-channel vectors broadcast
along the last axis and, for the channels-last activations that conv and pool
hand on, every sum runs along rows of W*C numbers (``_rows``) and every
elementwise pass along one row per example (``_long_rows``).  The cache keeps x
itself and the mean; the outputs live in pooled buffers, written in x's memory
layout.  A sum of products (a chunk's squares, dout times x) is one
``np.einsum`` pass, with no array of the products.  Training takes two passes
over x forward (its moments, then the output) and two over x and dout backward.

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
from minicnn.engine.buffers import buffer, buffer_like


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


def _rows_of(*arrays):
    """Batches of one shape as ``_rows`` gives each, when those agree (the same memory order); else as they are."""
    rows = [_rows(a) for a in arrays]
    return rows if len({r.shape for r in rows}) == 1 else list(arrays)


def _long_rows(*arrays):
    """``_rows_of(*arrays)`` with each example's rows merged into one, (N, H*W*C), where all of them merge so.

    For the passes that broadcast a tiled vector (``_tiled``) over rows: NumPy's cost per
    row is then paid N times rather than N*H (a quarter less time on BN-CNN's first map).
    Sums over rows stay on ``_rows``, which NumPy adds up faster.
    """
    rows = _rows_of(*arrays)
    if all(r.ndim == 3 and r.strides[1] == r.shape[2] * r.strides[2] for r in rows):
        return [r.reshape(r.shape[0], -1) for r in rows]
    return rows


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
    x: np.ndarray           # the input, channels-last (the normalised input is (x - mean) * inv_std)
    mean: np.ndarray        # (C,) the mean it was centred by (the batch's in training, else the running one)
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


def _moments(rows, C):
    """A part's function: for each chunk of its examples, (count, sum, sum of squares about the chunk's mean) per channel.

    One pass over the input from memory: each chunk is summed, then centred by its
    own mean into a scratch array while it is still in the cache.  ``_about`` combines
    the chunks exactly, so the variance never takes the difference of two large sums.
    """
    per_image = 2 * rows[:1].size

    def part(lo, hi):
        step = max(1, threads.CHUNK_NUMBERS // per_image)         # x and the scratch in half the L2, in a part too
        scratch = buffer("bn.scratch", (min(step, hi - lo),) + rows.shape[1:], rows.dtype)
        results = []
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            count = (b - a) * (rows[0].size // C)
            total = _add_shares([_share(rows, a, b)], C, np.empty(C, rows.dtype))
            centred = np.subtract(rows[a:b], _tiled(total * rows.dtype.type(1 / count), rows), out=scratch[:b - a])
            squares = _add_shares([_dot_share(centred, centred, 0, b - a)], C, np.empty(C, rows.dtype))
            results.append((count, total, squares))
        return results
    return part


def _about(moments, mean):
    """The sum of squares about ``mean`` from chunks' (count, sum, sum of squares about their own mean):
    ``sum_k [ss_k + count_k * (sum_k / count_k - mean)^2]`` (Chan, Golub and LeVeque's pairwise update)."""
    out = np.zeros_like(mean)
    for count, total, squares in moments:
        gap = total * mean.dtype.type(1 / count) - mean
        out += squares
        out += mean.dtype.type(count) * gap * gap
    return out


def statistics(v, gamma, beta, running_mean, running_var, training, momentum, eps):
    """What the output pass of ``batchnorm_forward`` needs: the mean and 1 / std it normalises by, the
    per-channel ``scale = gamma * inv_std`` and ``shift = beta - mean * scale``, and the running statistics
    (new arrays in training, updated; the same ones in evaluation).  In training the mean and variance come
    from one pass over x (``_moments``), added over the parts of a split batch (``threads.sum_over_parts``).

    Shape: v (N, H, W, C) or (N, C), channels last -> (mean, inv_std, scale, shift, running_mean, running_var)
    """
    C, dtype = v.shape[-1], v.dtype
    n = v.size // C
    if training:   # another part's layer may write the running statistics once the last sum is made
        running_mean, running_var = running_mean.copy(), running_var.copy()
        rows = _rows(v)
        moments = _flat(threads.run(_moments(rows, C), threads.parts(len(rows), rows[0].size)))
        mean = np.zeros(C, dtype)
        for _, total, _ in moments:
            mean += total
        mean, n = threads.sum_over_parts(mean, n)
        mean *= dtype.type(1 / n)
        var, = threads.sum_over_parts(_about(moments, mean))
        var *= dtype.type(1 / n)
        running_mean = _running_update(running_mean, mean, momentum)
        running_var = _running_update(running_var, var * (n / (n - 1)), momentum)   # the unbiased variance
    else:
        mean, var = running_mean.astype(dtype, copy=False), running_var.astype(dtype, copy=False)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    scale = gamma * inv_std
    return mean, inv_std, scale, beta - mean * scale, running_mean, running_var


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Normalise per channel: in training by the batch's statistics (and update the running ones), else by the running ones.

    Returns (out, running_mean, running_var, cache), the running statistics new arrays
    (the same ones in evaluation), as ``minicnn.nn.textbook.batchnorm_forward``.
    In training the mean and variance come from one pass over x (``statistics``), the
    output from a second, ``out = x * scale + (beta - mean * scale)`` with
    ``scale = gamma * inv_std`` (as PyTorch's CPU kernel; its rounding, about
    eps * |x| * scale, is that of x itself carried through).  The cache keeps x (the
    layer before does not) and the mean, not a centred copy: a pass less.

    Shape: x (N, C, H, W) or (N, C); gamma, beta, running_mean, running_var (C,) -> out like x, in x's memory layout
    """
    v = _channels_last(x)
    mean, inv_std, scale, shift, running_mean, running_var = statistics(
        v, gamma, beta, running_mean, running_var, training, momentum, eps)
    out = buffer_like("bn.out", v)
    rows, (long_rows, long_out) = _rows(v), _long_rows(v, out)
    scale_t, shift_t = _tiled(scale, long_rows), _tiled(shift, long_rows)

    def affine(lo, hi):
        np.multiply(long_rows[lo:hi], scale_t, out=long_out[lo:hi])
        np.add(long_out[lo:hi], shift_t, out=long_out[lo:hi])

    threads.run(_chunked(affine, rows), threads.parts(len(rows), rows[0].size))
    return _channels_first(out), running_mean, running_var, BatchNormCache(v, mean, inv_std, gamma, training)


def batchnorm_backward(dout, cache, need_dx):
    """-> (dx, dgamma, dbeta); dx None without need_dx.

    With xhat = (x - mean) * inv_std: ``dbeta = sum(dout)``,
    ``dgamma = sum(dout * xhat) = inv_std * (sum(dout * x) - mean * dbeta)`` per channel.  Training:
    ``dx = gamma * inv_std * (dout - k * x + (k * mean - dbeta / n))`` with ``k = inv_std * dgamma / n``;
    evaluation (fixed statistics): ``dx = dout * gamma * inv_std``.  Taking x rather than x - mean saves a
    pass; the price is rounding of about eps * |x| an entry (eps * |mean| / std relative, when the mean is
    far from 0), what x's own rounding carries anyway (a test holds it to that bound).
    """
    dv = _channels_last(dout)
    d_rows, x_rows = _rows_of(dv, cache.x)               # dout and x in different memory orders: runs of C
    parts = threads.parts(len(d_rows), d_rows[0].size)   # the same parts for both passes: 2 hand-offs
    shares = _flat(threads.run(_chunked(lambda lo, hi: sum_shares(d_rows, x_rows, lo, hi), d_rows), parts))
    return backward_from_shares(dv, cache, shares, need_dx)


def sum_shares(d_rows, x_rows, lo, hi):
    """The shares of examples lo:hi in the sums batch norm's backward needs: sum(dout) and sum(dout * x) per
    channel (on rows as ``_rows_of`` gives them; ``backward_from_shares`` adds the shares of all chunks)."""
    return _share(d_rows, lo, hi), _dot_share(d_rows, x_rows, lo, hi)


def backward_from_shares(dv, cache, shares, need_dx):
    """``batchnorm_backward`` once its sums' shares are in, one per chunk in order (``sum_shares``, over the
    chunks of ``threads.in_chunks`` at two rows per image, in the parts of ``threads.parts``).

    Shape: dv (N, H, W, C) or (N, C), channels last -> (dx or None, dgamma, dbeta)
    """
    xv = cache.x
    C, dtype = dv.shape[-1], dv.dtype
    n = dv.size // C
    d_rows = _rows_of(dv, xv)[0]
    parts = threads.parts(len(d_rows), d_rows[0].size)
    dbeta = _add_shares([s[0] for s in shares], C, np.empty(C, dtype))
    dgamma = _add_shares([s[1] for s in shares], C, np.empty(C, dtype))
    dgamma -= cache.mean * dbeta
    dgamma *= cache.inv_std
    if not need_dx:
        return None, dgamma, dbeta
    dx = buffer_like("bn.dx", xv)
    d_long, x_long, dx_long = _long_rows(dv, xv, dx)
    scale_t = _tiled(cache.gamma * cache.inv_std, d_long)
    if cache.training:
        all_dgamma, all_dbeta, n = threads.sum_over_parts(dgamma, dbeta, n)   # the whole batch's, in a split
        k = all_dgamma * cache.inv_std * dtype.type(1 / n)
        k_t, const_t = _tiled(k, d_long), _tiled(k * cache.mean - all_dbeta * dtype.type(1 / n), d_long)

        def part(lo, hi):
            np.multiply(x_long[lo:hi], k_t, out=dx_long[lo:hi])
            np.subtract(d_long[lo:hi], dx_long[lo:hi], out=dx_long[lo:hi])
            np.add(dx_long[lo:hi], const_t, out=dx_long[lo:hi])
            np.multiply(dx_long[lo:hi], scale_t, out=dx_long[lo:hi])
    else:
        def part(lo, hi):
            np.multiply(d_long[lo:hi], scale_t, out=dx_long[lo:hi])
    threads.run(_chunked(part, d_rows), parts)
    return _channels_first(dx), dgamma, dbeta
