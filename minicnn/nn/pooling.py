"""Max-pooling, the layer that keeps the strongest response of each window.

Both passes loop over the KH*KW window offsets only; the common 2x2, stride-2
case has its own path (a tree of pairwise maxima).  ``minicnn.reference`` holds
the textbook loops these are tested against.
"""
import numpy as np

from minicnn.im2col import output, output_like, output_size, scratch_like
from minicnn.validation import check_float_input, pair


class MaxPool2D:
    """Max over each KH x KW window, windows ``stride`` apart (no padding; a partial window at the edge is dropped).

    Backward sends each output gradient to the input that won its window; on a
    tie the first position in row-major order wins, as in PyTorch.  Like the
    convolution, both passes loop over the KH*KW offsets of the window only:
    offset k = (i, j) of every window is one strided slice of the input.

    Forward keeps a running ``np.maximum`` over those slices and remembers the
    winning offset of each window: offset k wins where it is *strictly* greater
    than the maximum so far (so the first maximum keeps ties), and because k
    only grows, ``winner = max_k(k * better_k)`` needs no masked assignment.
    Backward writes ``dout * (winner == k)`` into slice k of dx; when windows
    overlap (stride < kernel) the slices are added instead.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H_out, W_out),  H_out = (H - KH) // SH + 1,  W_out = (W - KW) // SW + 1
    """

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.params, self.grads = {}, {}
        self._winner = None
        self._x_shape = None
        self._channels_last = False
        self._pairwise = False   # the 2x2, stride-2 fast path keeps masks instead of a winner index
        self._scratch = {}

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C, output_size(H, self.kernel_size[0], self.stride[0], 0, 0),
                output_size(W, self.kernel_size[1], self.stride[1], 0, 0))

    def _windows(self, H_out, W_out):
        """Yield (k, slice_h, slice_w): for window offset k = i*KW + j, the strided slices that pick it."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        for i in range(KH):
            for j in range(KW):
                yield i * KW + j, slice(i, i + SH * (H_out - 1) + 1, SH), slice(j, j + SW * (W_out - 1) + 1, SW)

    def forward(self, x):
        check_float_input("MaxPool2D", x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        KH, KW = self.kernel_size
        if H < KH or W < KW:
            raise ValueError(f"MaxPool2D kernel {KH}x{KW} is larger than the input {H}x{W} (input shape {x.shape})")
        _, H_out, W_out = self.output_shape(x.shape[1:])
        views = [x[:, :, sh, sw] for _, sh, sw in self._windows(H_out, W_out)]   # each (N, C, H_out, W_out)
        index = np.dtype(np.uint8 if KH * KW <= 256 else np.int32)
        self._x_shape = x.shape
        self._channels_last = x.strides[1] < min(x.strides[2], x.strides[3])   # keep dx in x's memory layout
        self._pairwise = (KH, KW) == (2, 2) and self.stride == (2, 2)
        if self._pairwise:
            return self._forward_2x2(*views)
        out = output_like(self._scratch, "out", views[0])
        winner = scratch_like(self._scratch, "winner", views[0], index)
        if len(views) == 1:
            np.copyto(out, views[0])
            winner.fill(0)
        else:
            np.greater(views[1], views[0], out=winner)                # strict: on a tie offset 0 keeps it
            np.maximum(views[0], views[1], out=out)
            better = scratch_like(self._scratch, "better", views[0], bool)
            offset = scratch_like(self._scratch, "offset", views[0], index)
            for k in range(2, len(views)):
                np.greater(views[k], out, out=better)
                np.maximum(out, views[k], out=out)
                np.maximum(winner, np.multiply(better, index.type(k), out=offset), out=winner)
        self._winner = winner
        return out

    def _forward_2x2(self, v00, v01, v10, v11):
        """The common 2x2, stride-2 case as a tree of pairwise maxima: 6 array operations instead of 10.

        Each row is reduced first, then the rows, so that ties still go to the
        first maximum in row-major order; three boolean masks record the winners.
        """
        s = self._scratch
        self._right = [np.greater(v01, v00, out=scratch_like(s, "right0", v00, bool)),   # (0, 1) beat (0, 0)
                       np.greater(v11, v10, out=scratch_like(s, "right1", v00, bool))]   # (1, 1) beat (1, 0)
        top = np.maximum(v00, v01, out=scratch_like(s, "top", v00, v00.dtype))
        bottom = np.maximum(v10, v11, out=scratch_like(s, "bottom", v00, v00.dtype))
        self._down = np.greater(bottom, top, out=scratch_like(s, "down", v00, bool))     # bottom row strictly greater
        self._winner = self._down                                                         # marks forward as done
        return np.maximum(top, bottom, out=output_like(s, "out", v00))

    def _backward_2x2(self, dout, dx):
        # Each gradient goes to one of two places: the masked share, and the rest as a difference
        # (d - d*mask is d or exactly 0), which saves the boolean negations and mixed-type products.
        s = self._scratch
        dn = np.multiply(dout, self._down, out=scratch_like(s, "dn", dout, dout.dtype))
        rows = (np.subtract(dout, dn, out=scratch_like(s, "up", dout, dout.dtype)), dn)
        H_out, W_out = dout.shape[2:]
        for i, (d_row, right) in enumerate(zip(rows, self._right)):
            to_right = np.multiply(d_row, right, out=dx[:, :, i::2, 1::2][:, :, :H_out, :W_out])
            np.subtract(d_row, to_right, out=dx[:, :, i::2, 0::2][:, :, :H_out, :W_out])
        return dx

    def backward(self, dout, need_dx=True):
        if self._winner is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        if dout.shape != self._winner.shape:
            raise ValueError(f"MaxPool2D.backward expected dout of shape {self._winner.shape}, got {dout.shape}")
        if not need_dx:
            return None
        N, C, H, W = self._x_shape
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        H_out, W_out = dout.shape[2:]
        overlap = SH < KH or SW < KW
        tiled = (SH, SW) == (KH, KW) and H_out * KH == H and W_out * KW == W   # every input in exactly one window
        if self._channels_last:
            dx = output(self._scratch, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
        else:
            dx = output(self._scratch, "dx", (N, C, H, W), dout.dtype)
        if overlap or not tiled:
            dx.fill(0)
        if self._pairwise:
            return self._backward_2x2(dout, dx)
        won = scratch_like(self._scratch, "won", self._winner, bool)
        for k, sh, sw in self._windows(H_out, W_out):
            np.equal(self._winner, k, out=won)
            if overlap:
                dx[:, :, sh, sw] += np.multiply(dout, won)
            else:
                np.multiply(dout, won, out=dx[:, :, sh, sw])
        return dx
