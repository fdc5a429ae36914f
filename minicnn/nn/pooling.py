"""Pooling: max-pooling keeps the strongest response of each window, average pooling its mean.

The math is ``maxpool2d_*``, ``avgpool2d_*`` and ``global_avgpool2d_*`` of
``minicnn.nn.textbook`` (loops in ``minicnn.nn.reference``, fast ones in
``minicnn.engine.pool``); the classes check shapes and hold the cache.
"""
from minicnn.nn import ops
from minicnn.nn.im2col import output_size
from minicnn.nn.layer import Layer
from minicnn.utils.validation import check_float_input, pair


class _Pool2D(Layer):
    """What MaxPool2D and AvgPool2D share: a window, a stride and a padding of (ph, pw) zeros on each side.

    Forward and backward run ``ops.<op>_forward(x, *self._arguments())`` and ``ops.<op>_backward(dout, cache)``.
    """

    _padded = True          # whether the layer takes a padding

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self._x_shape = None

    def describe(self):
        return f"{type(self).__name__}({self.kernel_size[0]}x{self.kernel_size[1]})"

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (ph, pw) = self.padding
        return (C, output_size(H, self.kernel_size[0], self.stride[0], ph, ph),
                output_size(W, self.kernel_size[1], self.stride[1], pw, pw))

    def _check_input(self, x):
        name = type(self).__name__
        check_float_input(name, x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        (KH, KW), (ph, pw) = self.kernel_size, self.padding
        if H + 2 * ph < KH or W + 2 * pw < KW:
            what = (f"padded input {H + 2 * ph}x{W + 2 * pw} (input shape {x.shape}, padding {self.padding})"
                    if self._padded else f"input {H}x{W} (input shape {x.shape})")
            raise ValueError(f"{name} kernel {KH}x{KW} is larger than the {what}")
        self._x_shape = x.shape

    def forward(self, x):
        self._check_input(x)
        self._forget()
        out, self._cache = getattr(ops, f"{self.op}_forward")(x, *self._arguments())
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        self._check_dout(dout)
        return getattr(ops, f"{self.op}_backward")(dout, cache) if need_dx else None

    def _check_dout(self, dout):
        expected = self._x_shape[:2] + self.output_shape(self._x_shape[1:])[1:]
        if dout.shape != expected:
            raise ValueError(f"{type(self).__name__}.backward expected dout of shape {expected}, got {dout.shape}")


class MaxPool2D(_Pool2D):
    """Max over each KH x KW window, windows ``stride`` apart (no padding; a partial window at the edge is dropped).

    Backward sends each output gradient to the input that won its window; on a
    tie the first position in row-major order wins, as in PyTorch.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H_out, W_out),  H_out = (H - KH) // SH + 1,  W_out = (W - KW) // SW + 1
    """

    op = "maxpool2d"
    batch_separable = True
    _padded = False

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def _arguments(self):
        """What ``maxpool2d_forward`` takes after x."""
        return self.kernel_size, self.stride


class AvgPool2D(_Pool2D):
    """Mean over each KH x KW window of the zero-padded input, windows ``stride`` apart.

    The padding zeros count in the mean (PyTorch's ``count_include_pad=True``):
    every window is divided by KH*KW.  Backward gives each input of a window an
    equal share ``dout / (KH*KW)`` of that window's gradient (summed over the
    windows it belongs to).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)
    padding : int or (int, int), at most half the kernel (as in PyTorch), zeros on each side

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H_out, W_out),  H_out = (H + 2*ph - KH) // SH + 1,  W_out = (W + 2*pw - KW) // SW + 1
    """

    op = "avgpool2d"
    batch_separable = True

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"AvgPool2D padding must be at most half the kernel size {self.kernel_size}, "
                             f"got padding {self.padding}")

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def _arguments(self):
        """What ``avgpool2d_forward`` takes after x."""
        return self.kernel_size, self.stride, self.padding


class GlobalAvgPool2D(Layer):
    """The mean of each feature map: one number per channel, whatever H and W.

    Backward spreads each gradient evenly, ``dx[n, c, y, x] = dout[n, c] / (H*W)``.

    Shape: x (N, C, H, W) -> out (N, C)
    """

    op = "global_avgpool2d"
    batch_separable = True

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"GlobalAvgPool2D expects inputs of shape (C, H, W) per example, got {tuple(input_shape)}")
        return (input_shape[0],)

    def forward(self, x):
        check_float_input("GlobalAvgPool2D", x, 4, "(N, C, H, W)")
        self._forget()
        self._x_shape = x.shape
        out, self._cache = ops.global_avgpool2d_forward(x)
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        if dout.shape != self._x_shape[:2]:
            raise ValueError(f"GlobalAvgPool2D.backward expected dout of shape {self._x_shape[:2]}, got {dout.shape}")
        return ops.global_avgpool2d_backward(dout, cache) if need_dx else None
