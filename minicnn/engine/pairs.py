"""Two layers in one pass over memory: a batch norm and the 2x2 max-pool after it (the blocks of BN-CNN).

``batchnorm_maxpool2d_forward`` and ``batchnorm_maxpool2d_backward`` replace the textbook's, which are the
two layers' functions one after the other, and give the fast engine's numbers for the two layers apart to
the last bit:

- forward: the batch norm's statistics as ``normalization.batchnorm_forward`` takes them; then a chunk of
  images at a time, its output into a scratch array that stays in the cache, and the pool from there
  (``pool._forward_2x2(..., make)``), so the normalised map is never written whole and read back;
- backward: the pool's dx a chunk at a time and, while each chunk is in the cache, its shares of the batch
  norm's sums (``normalization.sum_shares``, on the chunks and parts the batch norm's own backward takes);
  then the batch norm's dx pass (``normalization.backward_from_shares``): a pass over dout and x less.

Other pools (not 2x2 with stride 2) and maps not stored channels-last run the two functions in turn.
"""
import numpy as np

from minicnn.engine import normalization, pool


def _long_rows(x, kernel_size, stride):
    """x's examples as rows of H*W*C numbers (a view), when the pair runs as one pass; else None."""
    if x.ndim != 4 or tuple(kernel_size) != (2, 2) or tuple(stride) != (2, 2) or not pool._is_channels_last(x):
        return None
    rows = normalization._long_rows(normalization._channels_last(x))[0]
    return rows if rows.ndim == 2 else None


def batchnorm_maxpool2d_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, kernel_size,
                                stride):
    """``maxpool2d_forward(batchnorm_forward(x, ...)[0], kernel_size, stride)`` without writing the batch norm's output.

    Shape: x (N, C, H, W); gamma, beta, running_mean, running_var (C,)
           -> out (N, C, H_out, W_out) in x's memory layout, running_mean, running_var, (batch norm's cache, pool's cache)
    """
    long_rows = _long_rows(x, kernel_size, stride)
    if long_rows is None:
        y, running_mean, running_var, norm = normalization.batchnorm_forward(
            x, gamma, beta, running_mean, running_var, training, momentum, eps)
        out, pooled = pool.maxpool2d_forward(y, kernel_size, stride)
        return out, running_mean, running_var, (norm, pooled)
    v = normalization._channels_last(x)
    mean, inv_std, scale, shift, running_mean, running_var = normalization.statistics(
        v, gamma, beta, running_mean, running_var, training, momentum, eps)
    scale_t, shift_t = normalization._tiled(scale, long_rows), normalization._tiled(shift, long_rows)

    def normalised(a, b, scratch):                  # the batch norm's output for images a:b, into scratch (b-a, H, W, C)
        rows = scratch.reshape(b - a, -1)
        np.multiply(long_rows[a:b], scale_t, out=rows)
        np.add(rows, shift_t, out=rows)
        return scratch.transpose(0, 3, 1, 2)

    H_out, W_out = x.shape[2] // 2, x.shape[3] // 2
    out, goes_right, down = pool._forward_2x2(x, H_out, W_out, normalised)
    return out, running_mean, running_var, (
        normalization.BatchNormCache(v, mean, inv_std, gamma, training),
        pool.MaxPoolCache(x.shape, True, (2, 2), (2, 2), goes_right, down))


def batchnorm_maxpool2d_backward(dout, cache, need_dx):
    """``batchnorm_backward(maxpool2d_backward(dout, ...), ..., need_dx)``, the batch norm's sums taken as the pool's dx is written.

    Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W) or None, dgamma (C,), dbeta (C,)
    """
    norm, pooled = cache
    if pooled.down is None or not pooled.channels_last:
        return normalization.batchnorm_backward(pool.maxpool2d_backward(dout, pooled), norm, need_dx)
    dy = pool._dx_buffer(pooled, dout.dtype)           # the pool's dx, the batch norm's dout
    dv = normalization._channels_last(dy)
    d_rows, x_rows = normalization._rows_of(dv, norm.x)
    per_part = pool._backward_2x2(dout, pooled.down, pooled.winner, dy,
                                  lambda a, b: normalization.sum_shares(d_rows, x_rows, a, b))
    return normalization.backward_from_shares(dv, norm, [share for part in per_part for share in part], need_dx)
