"""The layers: Conv2D, ReLU, MaxPool2D (in minicnn.pooling), Flatten, Dense.

Every layer has the same small API:

- ``forward(x)`` returns the output and keeps what backward will need;
- ``backward(dout)`` returns ``dx`` and overwrites ``self.grads[name]`` for every
  parameter (so nobody has to zero gradients); ``backward(dout, need_dx=False)``
  fills the same gradients but skips ``dx`` and returns None (a model's first
  layer in training: nobody needs the gradient of the data);
- ``params`` and ``grads`` are dicts with the same keys (empty for stateless layers);
- ``output_shape(input_shape)`` maps a per-example shape (no batch axis) to the
  output's, which is what ``Sequential.summary`` uses.

Outputs and gradients have the dtype of the input (float32 by default, float64
for gradient checks).  Weights use He (Kaiming) initialisation,
``N(0, 2 / fan_in)``, the right scale for layers followed by ReLU, drawn from
the ``rng`` you pass; biases start at zero.
"""
import numpy as np

from minicnn.im2col import (col2im_channels_last, column_sums, fill_rows, gemm, im2col_channels_last, im2col_offsets_first, output, output_like,
                            output_size, pad_channels_last, scratch, scratch_like, shifted_rows, width_windows)
from minicnn.pooling import MaxPool2D  # noqa: F401  (one of the five layers; it lives in its own module)
from minicnn.validation import check_float_input, float_dtype, pair, positive_int

# Stride-1 convolutions with at least this many input channels skip im2col (see im2col.shifted_rows);
# with fewer, the KH*KW thin products cost more than one im2col copy.
SHIFTED_MIN_CHANNELS = 4


def _as_dtype(array, dtype):
    """The parameter in the input's dtype (no copy when it already is)."""
    return array if array.dtype == dtype else array.astype(dtype)


def _set_grad(layer, name, value):
    """Write a gradient into ``layer.grads[name]`` in place (in the parameter's dtype), or replace it if it no longer fits."""
    param, grad = layer.params[name], layer.grads.get(name)
    if grad is not None and grad.shape == param.shape and grad.dtype == param.dtype:
        np.copyto(grad, value, casting="unsafe")
    else:
        layer.grads[name] = np.array(value, dtype=param.dtype)


def _he_normal(rng, shape, fan_in, dtype):
    rng = np.random.default_rng() if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


# -- Conv2D -----------------------------------------------------------------------------------

class Conv2D:
    """2-D convolution (cross-correlation, no kernel flip), computed by im2col and one matrix product.

    ``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, y*SH + i, x*SW + j]``

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size, stride : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        Zeros added around each image.  ``"valid"`` is 0; ``"same"`` (stride 1
        only) keeps H and W, putting the extra row/column of an even kernel at
        the bottom/right, as PyTorch does.
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
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 *, rng=None, dtype=np.float32):
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = self._resolve_padding(padding)
        dtype = float_dtype(dtype)
        KH, KW = self.kernel_size
        fan_in = self.in_channels * KH * KW
        self.params = {"W": _he_normal(rng, (self.out_channels, self.in_channels, KH, KW), fan_in, dtype)}
        if bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._scratch = {}   # internal buffers reused between calls (padded input, cols, ...)
        self._xp = None
        self._x_shape = None

    def _resolve_padding(self, padding):
        """-> (top, bottom, left, right)"""
        if isinstance(padding, str):
            if padding == "valid":
                return (0, 0, 0, 0)
            if padding == "same":
                if self.stride != (1, 1):
                    raise ValueError(f"padding='same' needs stride 1, got stride {self.stride}")
                (KH, KW) = self.kernel_size
                return ((KH - 1) // 2, KH // 2, (KW - 1) // 2, KW // 2)
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        ph, pw = pair(padding, "padding", 0)
        return (ph, ph, pw, pw)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        top, bottom, left, right = self.padding
        return (self.out_channels,
                output_size(H, self.kernel_size[0], self.stride[0], top, bottom),
                output_size(W, self.kernel_size[1], self.stride[1], left, right))

    def _check_input(self, x):
        check_float_input("Conv2D", x, 4, f"(N, {self.in_channels}, H, W)")
        N, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f"Conv2D expected input of shape (N, {self.in_channels}, H, W), got {x.shape}: "
                             f"{C} channels instead of {self.in_channels}")
        top, bottom, left, right = self.padding
        KH, KW = self.kernel_size
        if H + top + bottom < KH or W + left + right < KW:
            raise ValueError(f"Conv2D kernel {KH}x{KW} is larger than the padded input "
                             f"{H + top + bottom}x{W + left + right} (input {H}x{W}, padding {self.padding})")

    def forward(self, x):
        self._check_input(x)
        N, C, H, W = x.shape
        F, (KH, KW) = self.out_channels, self.kernel_size
        _, H_out, W_out = self.output_shape(x.shape[1:])
        dtype = x.dtype
        # Channels-last inside (see minicnn.im2col, "Fast paths"); a free view when x came from another layer.
        xp = pad_channels_last(x.transpose(0, 2, 3, 1), self.padding, self._scratch)  # (N, Hp, Wp, C)
        W_k = _as_dtype(self.params["W"], dtype).transpose(2, 3, 1, 0)               # (KH, KW, C, F)
        self._shifted = self.stride == (1, 1) and C >= SHIFTED_MIN_CHANNELS
        if self._shifted:
            # Stride 1: KH*KW products on shifted row ranges of the padded input, no im2col copy.
            M = shifted_rows(xp.shape, self.kernel_size)
            Wp = xp.shape[2]
            wide = width_windows(xp, KW, scratch(self._scratch, "wide", (xp.size // C - KW + 1, KW * C), dtype))
            out = output(self._scratch, "out", (xp.size // C, F), dtype)               # (N*Hp*Wp, F), junk rows unread
            self._fill_bias(out[:M], dtype)
            for i in range(KH):
                gemm(wide[i * Wp:i * Wp + M], W_k[i].reshape(KW * C, F), out[:M], accumulate="b" in self.params or i > 0)
            out = out.reshape(xp.shape[:3] + (F,))[:, :H_out, :W_out, :]
        else:
            if C == 1:   # one channel: long runs per kernel offset; BLAS takes the transpose for free
                cols = im2col_offsets_first(xp, self.kernel_size, self.stride,
                                            scratch(self._scratch, "cols", (KH, KW, C, N, H_out, W_out), dtype)).T
            else:
                cols = im2col_channels_last(xp, self.kernel_size, self.stride,
                                            scratch(self._scratch, "cols", (N, H_out, W_out, KH, KW, C), dtype))
            out = output(self._scratch, "out", (cols.shape[0], F), dtype)               # (N*H_out*W_out, F)
            self._fill_bias(out, dtype)
            gemm(cols, W_k.reshape(-1, F), out, accumulate="b" in self.params)
            out = out.reshape(N, H_out, W_out, F)
        self._xp, self._x_shape = xp, x.shape
        return out.transpose(0, 3, 1, 2)                                                # (N, F, H_out, W_out) view

    def _fill_bias(self, out, dtype):
        if "b" in self.params:
            fill_rows(out, _as_dtype(self.params["b"], dtype))

    def backward(self, dout, need_dx=True):
        """Fill ``grads["W"]`` (and ``grads["b"]``) and return dx; with ``need_dx=False`` skip dx and return None."""
        if self._xp is None:
            raise RuntimeError("Conv2D.backward called before forward")
        N, C, H, W = self._x_shape
        F, (KH, KW) = self.out_channels, self.kernel_size
        _, H_out, W_out = self.output_shape(self._x_shape[1:])
        if dout.shape != (N, F, H_out, W_out):
            raise ValueError(f"Conv2D.backward expected dout of the forward output's shape {(N, F, H_out, W_out)}, "
                             f"got {dout.shape}")
        xp = self._xp
        dtype = xp.dtype
        dout_hwc = dout.transpose(0, 2, 3, 1)                                           # (N, H_out, W_out, F) view
        W_k = _as_dtype(self.params["W"], dtype).transpose(2, 3, 1, 0)                 # (KH, KW, C, F)
        dW_k = scratch(self._scratch, "dW", (KH, KW, C, F), dtype)
        if self._shifted:
            M = shifted_rows(xp.shape, self.kernel_size)
            # dout on the padded grid, zero on the junk rows (the scratch border is never written).
            dpad = scratch(self._scratch, "dpad", xp.shape[:3] + (F,), dtype, zeros=True)
            dpad[:, :H_out, :W_out, :] = dout_hwc
            d = dpad.reshape(-1, F)[:M]                                                 # (M, F)
            wide, Wp = self._scratch["wide"], xp.shape[2]
            for i in range(KH):
                gemm(wide[i * Wp:i * Wp + M].T, d, dW_k[i].reshape(KW * C, F))         # (KW*C, F)
            if need_dx:
                # Kernel row 0 and width offset 0 write their whole range, so only the rows after it need zeros.
                dwide = scratch(self._scratch, "dwide", wide.shape, dtype)
                R = dwide.shape[0]
                dwide[M:] = 0
                for i in range(KH):
                    gemm(d, W_k[i].reshape(KW * C, F).T, dwide[i * Wp:i * Wp + M], accumulate=i > 0)
                dxp = output(self._scratch, "dx", xp.shape, dtype)
                dx_rows = dxp.reshape(-1, C)
                dx_rows[:R] = dwide[:, :C]
                dx_rows[R:] = 0
                for j in range(1, KW):                                                   # adjoint of width_windows
                    dx_rows[j:j + R] += dwide[:, j * C:(j + 1) * C]
        else:
            d = np.ascontiguousarray(dout_hwc, dtype=dtype).reshape(-1, F)              # (N*H_out*W_out, F)
            cols = self._scratch["cols"]
            cols = cols.reshape(KH * KW * C, d.shape[0]).T if C == 1 else cols.reshape(d.shape[0], KH * KW * C)  # (rows, patch)
            gemm(cols.T, d, dW_k.reshape(-1, F))
            if need_dx:
                dcols = gemm(d, W_k.reshape(-1, F).T, scratch(self._scratch, "dcols", cols.shape, dtype))
                dxp = col2im_channels_last(dcols, self.kernel_size, self.stride,
                                           output(self._scratch, "dx", xp.shape, dtype))
        _set_grad(self, "W", dW_k.transpose(3, 2, 0, 1))
        if "b" in self.params:
            _set_grad(self, "b", column_sums(d, self._scratch))
        if not need_dx:
            return None
        top, _, left, _ = self.padding
        return dxp[:, top:top + H, left:left + W, :].transpose(0, 3, 1, 2)            # (N, C, H, W) view


# -- ReLU ---------------------------------------------------------------------------------------

class ReLU:
    """Elementwise max(x, 0).

    Shape: x (any) -> out (same shape, dtype and memory layout as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self._mask = None
        self._scratch = {}

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"ReLU expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
        self._mask = np.greater(x, 0, out=scratch_like(self._scratch, "mask", x, bool))
        return np.maximum(x, x.dtype.type(0), out=output_like(self._scratch, "out", x))

    def backward(self, dout, need_dx=True):
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        if not need_dx:
            return None
        return np.multiply(dout, self._mask, out=output_like(self._scratch, "dx", dout))


# -- Flatten ------------------------------------------------------------------------------------

class Flatten:
    """Flatten every axis but the batch axis.

    Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self._x_shape = None
        self._channels_last = False   # dx goes back in x's memory layout
        self._scratch = {}

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"Flatten expected an array of shape (N, ...) with at least 2 dimensions, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self._x_shape = x.shape
        self._channels_last = x.ndim == 4 and x.strides[1] < min(x.strides[2], x.strides[3])
        return x.reshape(x.shape[0], -1)

    def backward(self, dout, need_dx=True):
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        if not need_dx:
            return None
        dx = dout.reshape(self._x_shape)
        if not self._channels_last:
            return dx
        # x came channels-last from a conv or pool: hand dx back the same way, so their backward stays fast.
        N, C, H, W = self._x_shape
        out = output(self._scratch, "dx", (N, H, W, C), dout.dtype).transpose(0, 3, 1, 2)
        np.copyto(out, dx)
        return out


# -- Dense --------------------------------------------------------------------------------------

class Dense:
    """Fully connected layer: ``out = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator, optional
        Source of the He-normal initial weights ``N(0, 2 / in_features)``.
    dtype : float32 by default

    Shape:
        x: (N, in_features) -> out: (N, out_features)
        W: (in_features, out_features),  b: (out_features,)
    """

    def __init__(self, in_features, out_features, *, rng=None, dtype=np.float32):
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = float_dtype(dtype)
        self.params = {"W": _he_normal(rng, (self.in_features, self.out_features), self.in_features, dtype),
                       "b": np.zeros(self.out_features, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x = None

    def output_shape(self, input_shape):
        return (self.out_features,)

    def forward(self, x):
        check_float_input("Dense", x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        self._x = x
        out = np.empty((x.shape[0], self.out_features), x.dtype)
        out[...] = _as_dtype(self.params["b"], x.dtype)
        return gemm(x, _as_dtype(self.params["W"], x.dtype), out, accumulate=True)

    def backward(self, dout, need_dx=True):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        x = self._x
        if dout.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Dense.backward expected dout of shape {(x.shape[0], self.out_features)}, got {dout.shape}")
        W, dW = self.params["W"], self.grads.get("W")
        if dW is not None and dW.shape == W.shape and dW.dtype == W.dtype == x.dtype == dout.dtype:
            gemm(x.T, dout, dW)                                  # straight into the gradient buffer
        else:
            _set_grad(self, "W", x.T @ dout)
        _set_grad(self, "b", column_sums(dout, {}))
        if not need_dx:
            return None
        return gemm(dout, _as_dtype(W, dout.dtype).T, np.empty(x.shape, dout.dtype))
