"""The fast pooling: max-pool (replaces the sliding-window argmax of ``minicnn.nn.textbook.maxpool2d_forward``) and average pools.

Both passes loop over the KH*KW window offsets only: offset k = (i, j) of every
window is one strided slice of the input.  Forward keeps a running
``np.maximum`` over those slices and remembers the winning offset of each
window: offset k wins where it is *strictly* greater than the maximum so far (so
the first maximum keeps ties, as in PyTorch), and because k only grows,
``winner = max_k(k * better_k)`` needs no masked assignment.  Backward writes
``dout * (winner == k)`` into slice k of dx; when windows overlap the slices are
added instead.  The common 2x2, stride-2 case compares rows first, then columns (``_forward_2x2``).
Outputs and dx keep the memory layout of x (channels-last stays channels-last).
The functions have the signatures of their textbook twins; their caches are small named tuples.
"""
from typing import NamedTuple

import numpy as np

from minicnn.engine import threads
from minicnn.engine.buffers import buffer, buffer_like
from minicnn.engine.threads import in_chunks


class MaxPoolCache(NamedTuple):
    """What ``maxpool2d_backward`` needs: the winning offset of every window (or, for 2x2, which row and column won)."""
    x_shape: tuple
    channels_last: bool
    kernel_size: tuple
    stride: tuple
    winner: np.ndarray      # (N, C, H_out, W_out): offset k = i*KW + j of each window's first maximum; for 2x2: right
    down: np.ndarray        # 2x2 only: (N, C, H_out, 2*W_out), whether the bottom row won; else None


def _windows(kernel_size, stride, H_out, W_out):
    """Yield (k, slice_h, slice_w): for window offset k = i*KW + j, the strided slices that pick it."""
    (KH, KW), (SH, SW) = kernel_size, stride
    for i in range(KH):
        for j in range(KW):
            yield i * KW + j, slice(i, i + SH * (H_out - 1) + 1, SH), slice(j, j + SW * (W_out - 1) + 1, SW)


def _is_channels_last(x):
    return x.strides[1] < min(x.strides[2], x.strides[3])


def maxpool2d_forward(x, kernel_size, stride):
    """Shape: x (N, C, H, W) -> out (N, C, H_out, W_out), in x's memory layout; cache."""
    (KH, KW), (SH, SW) = kernel_size, stride
    H_out, W_out = (x.shape[2] - KH) // SH + 1, (x.shape[3] - KW) // SW + 1
    if (KH, KW) == (2, 2) and (SH, SW) == (2, 2):
        out, goes_right, down = _forward_2x2(x, H_out, W_out)
        return out, MaxPoolCache(x.shape, _is_channels_last(x), (KH, KW), (SH, SW), goes_right, down)
    views = [x[:, :, sh, sw] for _, sh, sw in _windows(kernel_size, stride, H_out, W_out)]   # each (N, C, H_out, W_out)
    index = np.dtype(np.uint8 if KH * KW <= 256 else np.int32)
    out = buffer_like("maxpool.out", views[0])
    winner = buffer_like("maxpool.winner", views[0], index)
    if len(views) == 1:
        np.copyto(out, views[0])
        winner.fill(0)
    else:
        np.greater(views[1], views[0], out=winner)                # strict: on a tie offset 0 keeps it
        np.maximum(views[0], views[1], out=out)
        better = buffer_like("maxpool.better", views[0], bool)
        offset = buffer_like("maxpool.offset", views[0], index)
        for k in range(2, len(views)):
            np.greater(views[k], out, out=better)
            np.maximum(out, views[k], out=out)
            np.maximum(winner, np.multiply(better, index.type(k), out=offset), out=winner)
    return out, MaxPoolCache(x.shape, _is_channels_last(x), (KH, KW), (SH, SW), winner, None)


def _forward_2x2(x, H_out, W_out, make=None):
    """The 2x2, stride-2 case, rows first: replaces the four strided window slices of the general case.

    The two rows of every window are compared first, in long runs along the
    width (``down``: the bottom one is strictly greater), then the two
    columns of those row maxima (``right``).  Ties still go to the first
    maximum in row-major order, as in the general case: a tie between the
    columns goes right only when the left maximum came from the bottom row
    and the right one from the top row.  That correction takes three passes, which run only for a chunk
    of images with a tie between columns (rare in real numbers).  Returns (out, goes_right, down).

    ``make(a, b, scratch)``: the pool's input for images a:b is made a chunk at a time into ``scratch`` (a
    channels-last array of x's chunk shape, or longer) and returned as an (N, C, H, W) view, for a pass before
    the pool that never writes its whole output (a batch norm's, ``minicnn.engine.pairs``); x gives shapes.
    """
    top = x[:, :, 0:2 * H_out:2, :2 * W_out]                                                   # (N, C, H_out, 2*W_out)
    down = buffer_like("maxpool.down", top, bool)
    goes_right = buffer_like("maxpool.right", top[..., 0::2], bool)                             # (N, C, H_out, W_out)
    out = buffer_like("maxpool.out", goes_right, x.dtype)
    per_image = x[:1].size * (1 if make is None else 2)             # with ``make``, its chunk is in the cache too

    def part(lo, hi):                                                # images lo:hi
        # The row maxima and the ties live only while a chunk is in the cache: chunk-sized scratch arrays.
        size = threads.chunk_images(per_image)
        scratch = buffer_like("maxpool.rows", top[:size], x.dtype)
        ties = buffer_like("maxpool.tie", goes_right[:size], bool)
        made = None if make is None else buffer("maxpool.in", (size,) + x.shape[2:] + x.shape[1:2], x.dtype)

        def chunk(a, b):
            image = x[a:b] if make is None else make(a, b, made[:b - a])
            top, bottom = image[:, :, 0:2 * H_out:2, :2 * W_out], image[:, :, 1:2 * H_out:2, :2 * W_out]
            rows, tie = scratch[:b - a], ties[:b - a]
            np.greater(bottom, top, out=down[a:b])
            np.maximum(top, bottom, out=rows)
            left, right = rows[..., 0::2], rows[..., 1::2]
            np.greater(right, left, out=goes_right[a:b])
            np.equal(right, left, out=tie)
            if tie.any():                                            # rare in real numbers: three passes saved
                np.logical_and(tie, down[a:b, ..., 0::2], out=tie)   # ... the left maximum is in the bottom row
                np.greater(tie, down[a:b, ..., 1::2], out=tie)       # ... and the right one in the top row
                np.logical_or(goes_right[a:b], tie, out=goes_right[a:b])
            np.maximum(left, right, out=out[a:b])

        in_chunks(chunk, lo, hi, per_image)

    threads.over_rows(part, len(x), x[:1].size)
    return out, goes_right, down


def _backward_2x2(dout, down, goes_right, dx, after=None):
    """dx of the 2x2, stride-2 case; ``after(a, b)`` runs on each chunk of images a:b once its dx is written
    (while it is in the cache), and the chunks' results come back, one list per part in order."""
    # Each gradient goes to one of two places: the masked share, and the rest as a difference
    # (d - d*mask is d or exactly 0), which saves the boolean negations.  Columns first into
    # the row maxima, then rows, so that the full-size writes into dx run along whole rows.
    H_out, W_out = dout.shape[2:]
    per_image = dx[:1].size * (1 if after is None else 2)           # with ``after``, what it reads is in the cache too

    def part(lo, hi):                                                # images lo:hi
        # The row maxima's gradient lives only while a chunk is in the cache: a chunk-sized scratch array.
        scratch = buffer_like("maxpool.d_rows", down[:threads.chunk_images(per_image)], dout.dtype)
        results = []

        def chunk(a, b):
            d_rows = scratch[:b - a]                                 # (images, C, H_out, 2*W_out)
            to_right = np.multiply(dout[a:b], goes_right[a:b], out=d_rows[..., 1::2])
            np.subtract(dout[a:b], to_right, out=d_rows[..., 0::2])
            to_bottom = np.multiply(d_rows, down[a:b], out=dx[a:b, :, 1:2 * H_out:2, :2 * W_out])
            np.subtract(d_rows, to_bottom, out=dx[a:b, :, 0:2 * H_out:2, :2 * W_out])
            if after is not None:
                results.append(after(a, b))

        in_chunks(chunk, lo, hi, per_image)
        return results

    return threads.over_rows(part, len(dout), dx[:1].size)


def _nchw_buffer(name, shape, channels_last, dtype, **kwargs):
    """A pooled (N, C, H, W) array, stored channels-last when ``channels_last`` (as x was); kwargs as for ``buffer``."""
    N, C, H, W = shape
    if channels_last:
        return buffer(name, (N, H, W, C), dtype, **kwargs).transpose(0, 3, 1, 2)
    return buffer(name, (N, C, H, W), dtype, **kwargs)


def _dx_buffer(cache, dtype):
    """A max-pool's dx buffer in the memory layout x had, zeroed unless every input is in exactly one window
    (then the windows' slices write all of it)."""
    N, C, H, W = cache.x_shape
    (KH, KW), (SH, SW) = cache.kernel_size, cache.stride
    tiled = (SH, SW) == (KH, KW) and H % KH == 0 and W % KW == 0
    dx = _nchw_buffer("maxpool.dx", cache.x_shape, cache.channels_last, dtype)
    if not tiled:
        dx.fill(0)
    return dx


def maxpool2d_backward(dout, cache):
    """Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W), in the memory layout x had."""
    (KH, KW), (SH, SW) = cache.kernel_size, cache.stride
    H_out, W_out = dout.shape[2:]
    overlap = SH < KH or SW < KW
    dx = _dx_buffer(cache, dout.dtype)
    if cache.down is not None:
        _backward_2x2(dout, cache.down, cache.winner, dx)
        return dx
    won = buffer_like("maxpool.won", cache.winner, bool)
    for k, sh, sw in _windows(cache.kernel_size, cache.stride, H_out, W_out):
        np.equal(cache.winner, k, out=won)
        if overlap:
            dx[:, :, sh, sw] += np.multiply(dout, won)
        else:
            np.multiply(dout, won, out=dx[:, :, sh, sw])
    return dx


def _padded(x, padding):
    """x with ``padding`` = (ph, pw) zero rows/columns on each side, in a zero-bordered pooled buffer in x's layout.

    Shape: x (N, C, H, W) -> (N, C, H + 2*ph, W + 2*pw)
    """
    ph, pw = padding
    if (ph, pw) == (0, 0):
        return x
    N, C, H, W = x.shape
    xp = _nchw_buffer("avgpool.xp", (N, C, H + 2 * ph, W + 2 * pw), _is_channels_last(x), x.dtype, zeros=True, tag=(ph, pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x                                  # the border stays zero
    return xp


class AvgPoolCache(NamedTuple):
    x_shape: tuple
    channels_last: bool
    kernel_size: tuple
    stride: tuple
    padding: tuple          # (ph, pw)


def _slices(kernel_size, stride, H_out, W_out):
    return [(sh, sw) for _, sh, sw in _windows(kernel_size, stride, H_out, W_out)]


def avgpool2d_forward(x, kernel_size, stride, padding):
    """Add the KH*KW strided slices and scale by 1 / (KH*KW); replaces the sliding-window mean of the textbook.

    Zero padding counts in the mean, as in PyTorch's ``count_include_pad=True``.

    Shape: x (N, C, H, W) -> out (N, C, H_out, W_out), H_out = (H + 2*ph - KH) // SH + 1, in x's layout; cache
    """
    (KH, KW), (SH, SW) = kernel_size, stride
    xp = _padded(x, padding)
    H_out, W_out = (xp.shape[2] - KH) // SH + 1, (xp.shape[3] - KW) // SW + 1
    slices = _slices(kernel_size, stride, H_out, W_out)
    out = buffer_like("avgpool.out", xp[:, :, slices[0][0], slices[0][1]])
    scale = x.dtype.type(1 / (KH * KW))

    def chunk(lo, hi):                            # images lo:hi; their KH*KW slices are re-read from the cache
        views = [xp[lo:hi, :, sh, sw] for sh, sw in slices]
        part = out[lo:hi]
        if len(views) == 1:
            np.copyto(part, views[0])
        else:
            np.add(views[0], views[1], out=part)
            for view in views[2:]:
                np.add(part, view, out=part)
        np.multiply(part, scale, out=part)

    threads.over_rows(lambda lo, hi: in_chunks(chunk, lo, hi, xp[:1].size), len(xp), xp[:1].size)
    return out, AvgPoolCache(x.shape, _is_channels_last(x), tuple(kernel_size), tuple(stride), tuple(padding))


def avgpool2d_backward(dout, cache):
    """Write (or, where windows overlap or leave inputs out, add) ``dout / (KH*KW)`` into each slice.

    Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W), in the memory layout x had.
    """
    N, C, H, W = cache.x_shape
    (KH, KW), (SH, SW), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dout.shape[2:]
    dx = _nchw_buffer("avgpool.dx", cache.x_shape, cache.channels_last, dout.dtype)
    if (ph, pw) != (0, 0):          # gradients land in a padded buffer first, then the middle is copied out
        dxp = _nchw_buffer("avgpool.dxp", (N, C, H + 2 * ph, W + 2 * pw), cache.channels_last, dout.dtype)
    else:
        dxp = dx
    share = buffer_like("avgpool.share", dout)
    tiled = (SH, SW) == (KH, KW) and H_out * KH == dxp.shape[2] and W_out * KW == dxp.shape[3]
    slices, scale = _slices(cache.kernel_size, cache.stride, H_out, W_out), dout.dtype.type(1 / (KH * KW))

    def chunk(lo, hi):                            # images lo:hi, all KH*KW slices while they are in the cache
        np.multiply(dout[lo:hi], scale, out=share[lo:hi])
        if tiled:                                                    # every input in exactly one window
            for sh, sw in slices:
                np.copyto(dxp[lo:hi, :, sh, sw], share[lo:hi])
        else:
            dxp[lo:hi].fill(0)
            for sh, sw in slices:
                np.add(dxp[lo:hi, :, sh, sw], share[lo:hi], out=dxp[lo:hi, :, sh, sw])
        if dxp is not dx:
            np.copyto(dx[lo:hi], dxp[lo:hi, :, ph:ph + H, pw:pw + W])

    threads.over_rows(lambda lo, hi: in_chunks(chunk, lo, hi, dxp[:1].size), N, dxp[:1].size)
    return dx


class GlobalAvgPoolCache(NamedTuple):
    x_shape: tuple
    channels_last: bool


def global_avgpool2d_forward(x):
    """Mean over H and W into a pooled (N, C) buffer; replaces ``x.mean(axis=(2, 3))``.  Shape: x (N, C, H, W) -> out (N, C)"""
    N, C, H, W = x.shape
    out = buffer("gap.out", (N, C), x.dtype)
    np.add.reduce(x, axis=(2, 3), out=out)
    return np.multiply(out, x.dtype.type(1 / (H * W)), out=out), GlobalAvgPoolCache(x.shape, _is_channels_last(x))


def global_avgpool2d_backward(dout, cache):
    """Each gradient spread evenly over its map.  Shape: dout (N, C) -> dx (N, C, H, W), in the memory layout x had."""
    N, C, H, W = cache.x_shape
    dx = _nchw_buffer("gap.dx", cache.x_shape, cache.channels_last, dout.dtype)
    return np.multiply(dout[:, :, None, None], dout.dtype.type(1 / (H * W)), out=dx)
