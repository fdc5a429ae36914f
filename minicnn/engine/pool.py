"""The fast pooling layers: max-pool (replaces the sliding-window argmax of ``minicnn.nn.MaxPool2D``) and average pools.

Both passes loop over the KH*KW window offsets only: offset k = (i, j) of every
window is one strided slice of the input.  Forward keeps a running
``np.maximum`` over those slices and remembers the winning offset of each
window: offset k wins where it is *strictly* greater than the maximum so far (so
the first maximum keeps ties, as in PyTorch), and because k only grows,
``winner = max_k(k * better_k)`` needs no masked assignment.  Backward writes
``dout * (winner == k)`` into slice k of dx; when windows overlap the slices are
added instead.  The common 2x2, stride-2 case compares rows first, then columns (``_forward_2x2``).
Outputs and dx keep the memory layout of x (channels-last stays channels-last).
"""
import numpy as np

from minicnn.engine import threads
from minicnn.engine.buffers import recycled, recycled_like, scratch, scratch_like


class FastMaxPool2D:
    """Forward and backward of one max-pool layer, with the buffers they reuse.

    Parameters
    ----------
    kernel_size, stride : (int, int)
    """

    def __init__(self, kernel_size, stride):
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self._buffers = {}
        self._winner = self._x_shape = None
        self._channels_last = self._pairwise = False

    def _windows(self, H_out, W_out):
        """Yield (k, slice_h, slice_w): for window offset k = i*KW + j, the strided slices that pick it."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        for i in range(KH):
            for j in range(KW):
                yield i * KW + j, slice(i, i + SH * (H_out - 1) + 1, SH), slice(j, j + SW * (W_out - 1) + 1, SW)

    def forward(self, x):
        """Shape: x (N, C, H, W) -> out (N, C, H_out, W_out), in x's memory layout."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        H_out, W_out = (x.shape[2] - KH) // SH + 1, (x.shape[3] - KW) // SW + 1
        self._x_shape = x.shape
        self._channels_last = x.strides[1] < min(x.strides[2], x.strides[3])
        self._pairwise = (KH, KW) == (2, 2) and self.stride == (2, 2)
        if self._pairwise:
            return self._forward_2x2(x, H_out, W_out)
        views = [x[:, :, sh, sw] for _, sh, sw in self._windows(H_out, W_out)]   # each (N, C, H_out, W_out)
        index = np.dtype(np.uint8 if KH * KW <= 256 else np.int32)
        s = self._buffers
        out = recycled_like(s, "out", views[0])
        winner = scratch_like(s, "winner", views[0], index)
        if len(views) == 1:
            np.copyto(out, views[0])
            winner.fill(0)
        else:
            np.greater(views[1], views[0], out=winner)                # strict: on a tie offset 0 keeps it
            np.maximum(views[0], views[1], out=out)
            better = scratch_like(s, "better", views[0], bool)
            offset = scratch_like(s, "offset", views[0], index)
            for k in range(2, len(views)):
                np.greater(views[k], out, out=better)
                np.maximum(out, views[k], out=out)
                np.maximum(winner, np.multiply(better, index.type(k), out=offset), out=winner)
        self._winner = winner
        return out

    def _forward_2x2(self, x, H_out, W_out):
        """The 2x2, stride-2 case, rows first: replaces the four strided window slices of the general case.

        The two rows of every window are compared first, in long runs along the
        width (``down``: the bottom one is strictly greater), then the two
        columns of those row maxima (``right``).  Ties still go to the first
        maximum in row-major order, as in the general case: a tie between the
        columns goes right only when the left maximum came from the bottom row
        and the right one from the top row.
        """
        s = self._buffers
        top = x[:, :, 0:2 * H_out:2, :2 * W_out]                                                   # (N, C, H_out, 2*W_out)
        self._down = down = scratch_like(s, "down", top, bool)
        rows = scratch_like(s, "rows", top, x.dtype)
        self._right = self._winner = goes_right = scratch_like(s, "right", rows[..., 0::2], bool)  # (N, C, H_out, W_out)
        tie = scratch_like(s, "tie", goes_right, bool)
        out = recycled_like(s, "out", goes_right, x.dtype)

        def part(lo, hi):                                                # images lo:hi
            top, bottom = x[lo:hi, :, 0:2 * H_out:2, :2 * W_out], x[lo:hi, :, 1:2 * H_out:2, :2 * W_out]
            np.greater(bottom, top, out=down[lo:hi])
            np.maximum(top, bottom, out=rows[lo:hi])
            left, right = rows[lo:hi, ..., 0::2], rows[lo:hi, ..., 1::2]
            np.greater(right, left, out=goes_right[lo:hi])
            np.equal(right, left, out=tie[lo:hi])
            np.logical_and(tie[lo:hi], down[lo:hi, ..., 0::2], out=tie[lo:hi])   # ... the left maximum is in the bottom row
            np.greater(tie[lo:hi], down[lo:hi, ..., 1::2], out=tie[lo:hi])       # ... and the right one in the top row
            np.logical_or(goes_right[lo:hi], tie[lo:hi], out=goes_right[lo:hi])
            np.maximum(left, right, out=out[lo:hi])

        threads.over_rows(part, len(x), x[:1].size)
        return out

    def _backward_2x2(self, dout, dx):
        # Each gradient goes to one of two places: the masked share, and the rest as a difference
        # (d - d*mask is d or exactly 0), which saves the boolean negations.  Columns first into
        # the row maxima, then rows, so that the full-size writes into dx run along whole rows.
        s = self._buffers
        H_out, W_out = dout.shape[2:]
        down, goes_right = self._down, self._right
        d_rows = scratch_like(s, "d_rows", down, dout.dtype)                                     # (N, C, H_out, 2*W_out)

        def part(lo, hi):                                                # images lo:hi
            to_right = np.multiply(dout[lo:hi], goes_right[lo:hi], out=d_rows[lo:hi, ..., 1::2])
            np.subtract(dout[lo:hi], to_right, out=d_rows[lo:hi, ..., 0::2])
            to_bottom = np.multiply(d_rows[lo:hi], down[lo:hi], out=dx[lo:hi, :, 1:2 * H_out:2, :2 * W_out])
            np.subtract(d_rows[lo:hi], to_bottom, out=dx[lo:hi, :, 0:2 * H_out:2, :2 * W_out])

        threads.over_rows(part, len(dout), dx[:1].size)
        return dx

    def backward(self, dout):
        """Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W), in the memory layout x had."""
        N, C, H, W = self._x_shape
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        H_out, W_out = dout.shape[2:]
        overlap = SH < KH or SW < KW
        tiled = (SH, SW) == (KH, KW) and H_out * KH == H and W_out * KW == W   # every input in exactly one window
        s = self._buffers
        if self._channels_last:
            dx = recycled(s, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
        else:
            dx = recycled(s, "dx", (N, C, H, W), dout.dtype)
        if overlap or not tiled:
            dx.fill(0)
        if self._pairwise:
            return self._backward_2x2(dout, dx)
        won = scratch_like(s, "won", self._winner, bool)
        for k, sh, sw in self._windows(H_out, W_out):
            np.equal(self._winner, k, out=won)
            if overlap:
                dx[:, :, sh, sw] += np.multiply(dout, won)
            else:
                np.multiply(dout, won, out=dx[:, :, sh, sw])
        return dx


CHUNK_NUMBERS = 1 << 17      # numbers of input per chunk of images: 512 KiB of float32, at home in L2


def in_chunks(fn, lo, hi, numbers_per_image):
    """``fn(a, b)`` over chunks of the images lo:hi that fit in the cache; replaces one call ``fn(lo, hi)``.

    For passes that read the same images several times over (the KH*KW slices of a pooling window).
    """
    step = max(1, CHUNK_NUMBERS // max(1, numbers_per_image))
    for a in range(lo, hi, step):
        fn(a, min(hi, a + step))


def _padded(x, padding, store):
    """x with ``padding`` = (ph, pw) zero rows/columns on each side, in a zero-bordered scratch buffer in x's layout.

    Shape: x (N, C, H, W) -> (N, C, H + 2*ph, W + 2*pw)
    """
    ph, pw = padding
    if (ph, pw) == (0, 0):
        return x
    N, C, H, W = x.shape
    if x.strides[1] < min(x.strides[2], x.strides[3]):               # channels-last
        xp = scratch(store, "xp", (N, H + 2 * ph, W + 2 * pw, C), x.dtype, zeros=True).transpose(0, 3, 1, 2)
    else:
        xp = scratch(store, "xp", (N, C, H + 2 * ph, W + 2 * pw), x.dtype, zeros=True)
    xp[:, :, ph:ph + H, pw:pw + W] = x                                  # the border stays zero
    return xp


class FastAvgPool2D:
    """Forward and backward of one average-pool layer; replaces the sliding-window mean of ``minicnn.nn.AvgPool2D``.

    Forward adds the KH*KW strided slices (window offset (i, j) of every window at
    once) into the output and scales by ``1 / (KH*KW)``; backward writes (or, where
    windows overlap or leave inputs out, adds) the scaled gradient into each slice.
    Zero padding counts in the mean, as in PyTorch's ``count_include_pad=True``.
    Outputs and dx keep x's memory layout.

    Parameters
    ----------
    kernel_size, stride, padding : (int, int)
    """

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)
        self._buffers = {}
        self._x_shape = self._x_strides = None

    def _slices(self, H_out, W_out):
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        for i in range(KH):
            for j in range(KW):
                yield slice(i, i + SH * (H_out - 1) + 1, SH), slice(j, j + SW * (W_out - 1) + 1, SW)

    def forward(self, x):
        """Shape: x (N, C, H, W) -> out (N, C, H_out, W_out), H_out = (H + 2*ph - KH) // SH + 1, in x's layout."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        s = self._buffers
        self._x_shape, self._x_strides = x.shape, x.strides
        xp = _padded(x, self.padding, s)
        H_out, W_out = (xp.shape[2] - KH) // SH + 1, (xp.shape[3] - KW) // SW + 1
        slices = list(self._slices(H_out, W_out))
        out = recycled_like(s, "out", xp[:, :, slices[0][0], slices[0][1]])
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
        return out

    def backward(self, dout):
        """Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W), in the memory layout x had."""
        N, C, H, W = self._x_shape
        (KH, KW), (SH, SW), (ph, pw) = self.kernel_size, self.stride, self.padding
        H_out, W_out = dout.shape[2:]
        s = self._buffers
        channels_last = self._x_strides[1] < min(self._x_strides[2], self._x_strides[3])
        if channels_last:
            dx = recycled(s, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
        else:
            dx = recycled(s, "dx", (N, C, H, W), dout.dtype)
        if (ph, pw) != (0, 0):          # gradients land in a padded scratch first, then the middle is copied out
            shape = (N, H + 2 * ph, W + 2 * pw, C) if channels_last else (N, C, H + 2 * ph, W + 2 * pw)
            dxp = scratch(s, "dxp", shape, dout.dtype)
            dxp = dxp.transpose(0, 3, 1, 2) if channels_last else dxp
        else:
            dxp = dx
        share = scratch_like(s, "share", dout, dout.dtype)
        tiled = (SH, SW) == (KH, KW) and H_out * KH == dxp.shape[2] and W_out * KW == dxp.shape[3]
        slices, scale = list(self._slices(H_out, W_out)), dout.dtype.type(1 / (KH * KW))

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


class FastGlobalAvgPool2D:
    """Mean over H and W into a reused (N, C) buffer, and its backward spread into a buffer in x's layout.

    Replaces ``x.mean(axis=(2, 3))`` and the ``np.broadcast_to(...).copy()`` of ``minicnn.nn.GlobalAvgPool2D``.
    """

    def __init__(self):
        self._buffers = {}
        self._x_shape = self._x_strides = None

    def forward(self, x):
        """Shape: x (N, C, H, W) -> out (N, C)"""
        N, C, H, W = x.shape
        self._x_shape, self._x_strides = x.shape, x.strides
        out = recycled(self._buffers, "out", (N, C), x.dtype)
        np.add.reduce(x, axis=(2, 3), out=out)
        return np.multiply(out, x.dtype.type(1 / (H * W)), out=out)

    def backward(self, dout):
        """Shape: dout (N, C) -> dx (N, C, H, W), in the memory layout x had."""
        N, C, H, W = self._x_shape
        if self._x_strides[1] < min(self._x_strides[2], self._x_strides[3]):
            dx = recycled(self._buffers, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
        else:
            dx = recycled(self._buffers, "dx", (N, C, H, W), dout.dtype)
        return np.multiply(dout[:, :, None, None], dout.dtype.type(1 / (H * W)), out=dx)
