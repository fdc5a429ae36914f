"""Pooling: max-pooling keeps the strongest response of each window, average pooling its mean."""
import numpy as np

from minicnn.engine.pool import FastAvgPool2D, FastGlobalAvgPool2D, FastMaxPool2D
from minicnn.nn.engines import current_engine
from minicnn.nn.im2col import output_size, pad_nchw
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
        self.training = True
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


class AvgPool2D:
    """Mean over each KH x KW window of the zero-padded input, windows ``stride`` apart.

    The padding zeros count in the mean (PyTorch's ``count_include_pad=True``):
    every window is divided by KH*KW.  Backward gives each input of a window an
    equal share ``dout / (KH*KW)`` of that window's gradient (summed over the
    windows it belongs to).

    Runs on the fast engine by default (``minicnn.engine.pool.FastAvgPool2D``: a sum
    over the KH*KW strided slices); ``use_engine("textbook")`` runs the code below.
    The loop version is ``minicnn.nn.reference.avgpool2d_naive`` (and ``avgpool2d_backward_naive``).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)
    padding : int or (int, int), at most half the kernel (as in PyTorch), zeros on each side

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H_out, W_out),  H_out = (H + 2*ph - KH) // SH + 1,  W_out = (W + 2*pw - KW) // SW + 1
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"AvgPool2D padding must be at most half the kernel size {self.kernel_size}, "
                             f"got padding {self.padding}")
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastAvgPool2D(self.kernel_size, self.stride, self.padding)
        self._engine = self._x_shape = None

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (ph, pw) = self.padding
        return (C, output_size(H, self.kernel_size[0], self.stride[0], ph, ph),
                output_size(W, self.kernel_size[1], self.stride[1], pw, pw))

    def forward(self, x):
        check_float_input("AvgPool2D", x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        (KH, KW), (SH, SW), (ph, pw) = self.kernel_size, self.stride, self.padding
        if H + 2 * ph < KH or W + 2 * pw < KW:
            raise ValueError(f"AvgPool2D kernel {KH}x{KW} is larger than the padded input {H + 2 * ph}x{W + 2 * pw} "
                             f"(input shape {x.shape}, padding {self.padding})")
        self._engine, self._x_shape = current_engine(), x.shape
        if self._engine == "fast":
            return self._fast.forward(x)
        xp = pad_nchw(x, (ph, ph, pw, pw))
        windows = np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW]
        return windows.mean(axis=(4, 5))                                  # (N, C, H_out, W_out)

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("AvgPool2D.backward called before forward")
        expected = self._x_shape[:2] + self.output_shape(self._x_shape[1:])[1:]
        if dout.shape != expected:
            raise ValueError(f"AvgPool2D.backward expected dout of shape {expected}, got {dout.shape}")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        N, C, H, W = self._x_shape
        (KH, KW), (SH, SW), (ph, pw) = self.kernel_size, self.stride, self.padding
        H_out, W_out = dout.shape[2:]
        share = dout / (KH * KW)
        dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dout.dtype)
        for i in range(KH):                                               # window offset (i, j) of every window at once
            for j in range(KW):
                dxp[:, :, i:i + SH * (H_out - 1) + 1:SH, j:j + SW * (W_out - 1) + 1:SW] += share
        return dxp[:, :, ph:ph + H, pw:pw + W]


class GlobalAvgPool2D:
    """The mean of each feature map: one number per channel, whatever H and W.

    Backward spreads each gradient evenly, ``dx[n, c, y, x] = dout[n, c] / (H*W)``.
    Runs on the fast engine by default (``minicnn.engine.pool.FastGlobalAvgPool2D``).

    Shape: x (N, C, H, W) -> out (N, C)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastGlobalAvgPool2D()
        self._engine = self._x_shape = None

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"GlobalAvgPool2D expects inputs of shape (C, H, W) per example, got {tuple(input_shape)}")
        return (input_shape[0],)

    def forward(self, x):
        check_float_input("GlobalAvgPool2D", x, 4, "(N, C, H, W)")
        self._engine, self._x_shape = current_engine(), x.shape
        if self._engine == "fast":
            return self._fast.forward(x)
        return x.mean(axis=(2, 3))

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("GlobalAvgPool2D.backward called before forward")
        if dout.shape != self._x_shape[:2]:
            raise ValueError(f"GlobalAvgPool2D.backward expected dout of shape {self._x_shape[:2]}, got {dout.shape}")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        N, C, H, W = self._x_shape
        return np.broadcast_to(dout[:, :, None, None] / (H * W), self._x_shape).copy()
