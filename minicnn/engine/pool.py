"""The fast max-pool: replaces the sliding-window argmax of ``minicnn.nn.MaxPool2D``.

Both passes loop over the KH*KW window offsets only: offset k = (i, j) of every
window is one strided slice of the input.  Forward keeps a running
``np.maximum`` over those slices and remembers the winning offset of each
window: offset k wins where it is *strictly* greater than the maximum so far (so
the first maximum keeps ties, as in PyTorch), and because k only grows,
``winner = max_k(k * better_k)`` needs no masked assignment.  Backward writes
``dout * (winner == k)`` into slice k of dx; when windows overlap the slices are
added instead.  The common 2x2, stride-2 case is a tree of pairwise maxima.
Outputs and dx keep the memory layout of x (channels-last stays channels-last).
"""
import numpy as np

from minicnn.engine.buffers import recycled, recycled_like, scratch_like


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
        views = [x[:, :, sh, sw] for _, sh, sw in self._windows(H_out, W_out)]   # each (N, C, H_out, W_out)
        index = np.dtype(np.uint8 if KH * KW <= 256 else np.int32)
        s = self._buffers
        self._x_shape = x.shape
        self._channels_last = x.strides[1] < min(x.strides[2], x.strides[3])
        self._pairwise = (KH, KW) == (2, 2) and self.stride == (2, 2)
        if self._pairwise:
            return self._forward_2x2(*views)
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

    def _forward_2x2(self, v00, v01, v10, v11):
        """The 2x2, stride-2 case as a tree of pairwise maxima: 6 array operations instead of 10.

        Each row is reduced first, then the rows, so that ties still go to the
        first maximum in row-major order; three boolean masks record the winners.
        """
        s = self._buffers
        self._right = [np.greater(v01, v00, out=scratch_like(s, "right0", v00, bool)),   # (0, 1) beat (0, 0)
                       np.greater(v11, v10, out=scratch_like(s, "right1", v00, bool))]   # (1, 1) beat (1, 0)
        top = np.maximum(v00, v01, out=scratch_like(s, "top", v00, v00.dtype))
        bottom = np.maximum(v10, v11, out=scratch_like(s, "bottom", v00, v00.dtype))
        self._down = np.greater(bottom, top, out=scratch_like(s, "down", v00, bool))     # bottom row strictly greater
        self._winner = self._down
        return np.maximum(top, bottom, out=recycled_like(s, "out", v00))

    def _backward_2x2(self, dout, dx):
        # Each gradient goes to one of two places: the masked share, and the rest as a difference
        # (d - d*mask is d or exactly 0), which saves the boolean negations and mixed-type products.
        s = self._buffers
        dn = np.multiply(dout, self._down, out=scratch_like(s, "dn", dout, dout.dtype))
        rows = (np.subtract(dout, dn, out=scratch_like(s, "up", dout, dout.dtype)), dn)
        H_out, W_out = dout.shape[2:]
        for i, (d_row, right) in enumerate(zip(rows, self._right)):
            to_right = np.multiply(d_row, right, out=dx[:, :, i::2, 1::2][:, :, :H_out, :W_out])
            np.subtract(d_row, to_right, out=dx[:, :, i::2, 0::2][:, :, :H_out, :W_out])
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
