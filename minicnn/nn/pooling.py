"""Max-pooling, the layer that keeps the strongest response of each window."""
import numpy as np

from minicnn.engine.pool import FastMaxPool2D
from minicnn.nn.engines import current_engine
from minicnn.nn.im2col import output_size
from minicnn.utils.validation import check_float_input, pair


class MaxPool2D:
    """Max over each KH x KW window, windows ``stride`` apart (no padding; a partial window at the edge is dropped).

    Backward sends each output gradient to the input that won its window; on a
    tie the first position in row-major order wins, as in PyTorch.

    Runs on the fast engine by default (``minicnn.engine.pool.FastMaxPool2D``: a
    running maximum over the KH*KW offsets, a pairwise tree for 2x2);
    ``use_engine("textbook")`` runs the code below.  The loop version is
    ``minicnn.nn.reference.maxpool2d_naive`` (and ``maxpool2d_backward_naive``).

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
        self._fast = FastMaxPool2D(self.kernel_size, self.stride)
        self._engine = self._argmax = self._x_shape = None

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C, output_size(H, self.kernel_size[0], self.stride[0], 0, 0),
                output_size(W, self.kernel_size[1], self.stride[1], 0, 0))

    def forward(self, x):
        check_float_input("MaxPool2D", x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        if H < KH or W < KW:
            raise ValueError(f"MaxPool2D kernel {KH}x{KW} is larger than the input {H}x{W} (input shape {x.shape})")
        self._engine, self._x_shape = current_engine(), x.shape
        if self._engine == "fast":
            return self._fast.forward(x)
        windows = np.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW]
        windows = windows.reshape(windows.shape[:4] + (KH * KW,))      # (N, C, H_out, W_out, KH*KW)
        self._argmax = windows.argmax(axis=-1)                          # the first maximum of each window
        return np.take_along_axis(windows, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        expected = self._x_shape[:2] + self.output_shape(self._x_shape[1:])[1:]
        if dout.shape != expected:
            raise ValueError(f"MaxPool2D.backward expected dout of shape {expected}, got {dout.shape}")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        H_out, W_out = dout.shape[2:]
        dx = np.zeros(self._x_shape, dout.dtype)
        for i in range(KH):                                             # window offset (i, j) of every window at once
            for j in range(KW):
                won = self._argmax == i * KW + j                        # (N, C, H_out, W_out)
                dx[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW] += dout * won
        return dx
