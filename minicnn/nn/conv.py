"""Conv2D: every window of the input times the same filters.

The math is ``conv2d_forward`` / ``conv2d_backward`` in ``minicnn.nn.textbook``
(im2col and one matrix product), ``minicnn.nn.reference`` (loops) and
``minicnn.engine.conv`` (fast); ``minicnn.nn.ops`` picks one.
"""
import numpy as np

from minicnn.nn import ops
from minicnn.nn.im2col import output_size
from minicnn.nn.layer import Layer
from minicnn.nn.weights import as_dtype, he_normal, set_grad
from minicnn.utils.validation import check_float_input, float_dtype, pair, positive_int


def same_padding(kernel_size):
    """(top, bottom, left, right) that keeps H and W at stride 1; an even kernel's extra row/column goes bottom/right, as in PyTorch."""
    KH, KW = kernel_size
    return ((KH - 1) // 2, KH // 2, (KW - 1) // 2, KW // 2)


class Conv2D(Layer):
    """2-D convolution (cross-correlation, no kernel flip).

    ``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, y*SH + i, x*SW + j]``

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size, stride : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        Zeros added around each image.  ``"valid"`` is 0; ``"same"`` (stride 1
        only) keeps H and W (see ``same_padding``).
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-normal initial weights ``N(0, 2 / (C*KH*KW))``.
        Pass one for reproducible runs; without it a fresh unseeded generator is used.
    dtype : float32 by default

    Shape:
        x:   (N, C, H, W)
        out: (N, F, H_out, W_out),  H_out = (H + pad_top + pad_bottom - KH) // SH + 1
                                    W_out = (W + pad_left + pad_right - KW) // SW + 1
        W:   (F, C, KH, KW),  b: (F,)

    The loop version, one window at a time, is ``minicnn.nn.reference.conv2d_naive``
    (and ``conv2d_backward_naive``).
    """

    op = "conv2d"
    batch_separable = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 *, rng=None, dtype=np.float32):
        super().__init__()
        dtype = float_dtype(dtype)
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = self._resolve_padding(padding)
        KH, KW = self.kernel_size
        self.params = {"W": he_normal(rng, (self.out_channels, self.in_channels, KH, KW), self.in_channels * KH * KW, dtype)}
        if bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x_shape = None

    def _resolve_padding(self, padding):
        """-> (top, bottom, left, right)"""
        if isinstance(padding, str):
            if padding == "valid":
                return (0, 0, 0, 0)
            if padding == "same":
                if self.stride != (1, 1):
                    raise ValueError(f"padding='same' needs stride 1, got stride {self.stride}")
                return same_padding(self.kernel_size)
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        ph, pw = pair(padding, "padding", 0)
        return (ph, ph, pw, pw)

    def config(self):
        top, bottom, left, right = self.padding
        if top == bottom and left == right:
            padding = [top, left]
        elif self.padding == same_padding(self.kernel_size) and self.stride == (1, 1):
            padding = "same"
        else:
            raise ValueError(f"Conv2D padding {self.padding} cannot be written as a constructor argument")
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": padding, "bias": "b" in self.params}

    @classmethod
    def param_shapes(cls, config):
        """W (out_channels, in_channels, KH, KW), b (out_channels,) when bias."""
        F, C = positive_int(config["out_channels"], "out_channels"), positive_int(config["in_channels"], "in_channels")
        KH, KW = pair(config["kernel_size"], "kernel_size", 1)
        return {"W": (F, C, KH, KW), **({"b": (F,)} if config.get("bias", True) else {})}

    def describe(self):
        return f"Conv2D({self.in_channels}->{self.out_channels}, {self.kernel_size[0]}x{self.kernel_size[1]})"

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"Conv2D expects inputs of shape ({self.in_channels}, H, W) per example, got {tuple(input_shape)}")
        C, H, W_in = input_shape
        top, bottom, left, right = self.padding
        return (self.out_channels,
                output_size(H, self.kernel_size[0], self.stride[0], top, bottom),
                output_size(W_in, self.kernel_size[1], self.stride[1], left, right))

    def _check_input(self, x):
        check_float_input("Conv2D", x, 4, f"(N, {self.in_channels}, H, W)")
        N, C, H, W_in = x.shape
        if C != self.in_channels:
            raise ValueError(f"Conv2D expected input of shape (N, {self.in_channels}, H, W), got {x.shape}: "
                             f"{C} channels instead of {self.in_channels}")
        top, bottom, left, right = self.padding
        KH, KW = self.kernel_size
        if H + top + bottom < KH or W_in + left + right < KW:
            raise ValueError(f"Conv2D kernel {KH}x{KW} is larger than the padded input "
                             f"{H + top + bottom}x{W_in + left + right} (input {H}x{W_in}, padding {self.padding})")

    def _weights(self, dtype):
        b = self.params.get("b")
        return as_dtype(self.params["W"], dtype), None if b is None else as_dtype(b, dtype)

    def forward(self, x):
        self._check_input(x)
        W, b = self._weights(x.dtype)
        self._forget()
        self._x_shape = x.shape
        out, self._cache = ops.conv2d_forward(x, W, b, self.stride, self.padding)
        return out

    def backward(self, dout, need_dx=True):
        """Fill ``grads["W"]`` (and ``grads["b"]``) and return dx; with ``need_dx=False`` skip dx and return None."""
        cache = self._require_cache()
        expected = self._x_shape[:1] + self.output_shape(self._x_shape[1:])
        if dout.shape != expected:
            raise ValueError(f"Conv2D.backward expected dout of the forward output's shape {expected}, got {dout.shape}")
        dx, dW, db = ops.conv2d_backward(dout, cache, need_dx)
        set_grad(self, "W", dW)
        if "b" in self.params:
            set_grad(self, "b", db)
        return dx
