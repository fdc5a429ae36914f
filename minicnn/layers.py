"""The layers: Conv2D, ReLU, MaxPool2D, Flatten, Dense.

Every layer has the same small API:

- ``forward(x)`` returns the output and keeps what backward will need;
- ``backward(dout)`` returns ``dx`` and overwrites ``self.grads[name]`` for every
  parameter (so nobody has to zero gradients);
- ``params`` and ``grads`` are dicts with the same keys (empty for stateless layers);
- ``output_shape(input_shape)`` maps a per-example shape (no batch axis) to the
  output's, which is what ``Sequential.summary`` uses.

Outputs and gradients have the dtype of the input (float32 by default, float64
for gradient checks).  Weights use He (Kaiming) initialisation,
``N(0, 2 / fan_in)``, the right scale for layers followed by ReLU, drawn from
the ``rng`` you pass; biases start at zero.
"""
import numpy as np

from minicnn.im2col import col2im, im2col, output_size


# -- validation helpers -------------------------------------------------------------------------

def _pair(value, name, minimum):
    """An int or a pair of ints -> a pair of ints, each >= minimum."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_float_input(layer, x, ndim, layout):
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{layer} expected a NumPy array of shape {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{layer} expected input of shape {layout} ({ndim} dimensions), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{layer} expected a floating-point input, got dtype {x.dtype}; "
                         f"convert with x.astype(np.float32)")


def _as_dtype(array, dtype):
    """The parameter in the input's dtype (no copy when it already is)."""
    return array if array.dtype == dtype else array.astype(dtype)


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
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = self._resolve_padding(padding)
        KH, KW = self.kernel_size
        fan_in = self.in_channels * KH * KW
        self.params = {"W": _he_normal(rng, (self.out_channels, self.in_channels, KH, KW), fan_in, dtype)}
        if bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._cols = None
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
        ph, pw = _pair(padding, "padding", 0)
        return (ph, ph, pw, pw)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        top, bottom, left, right = self.padding
        return (self.out_channels,
                output_size(H, self.kernel_size[0], self.stride[0], top, bottom),
                output_size(W, self.kernel_size[1], self.stride[1], left, right))

    def _check_input(self, x):
        _check_float_input("Conv2D", x, 4, f"(N, {self.in_channels}, H, W)")
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
        N = x.shape[0]
        F = self.out_channels
        _, H_out, W_out = self.output_shape(x.shape[1:])
        cols = im2col(x, self.kernel_size, self.stride, self.padding)  # (N, C*KH*KW, H_out*W_out)
        W_mat = _as_dtype(self.params["W"], x.dtype).reshape(F, -1)   # (F, C*KH*KW)
        out = np.matmul(W_mat, cols)                                   # (N, F, H_out*W_out)
        if "b" in self.params:
            out += _as_dtype(self.params["b"], x.dtype)[:, None]
        self._cols, self._x_shape = cols, x.shape
        return out.reshape(N, F, H_out, W_out)

    def backward(self, dout):
        if self._cols is None:
            raise RuntimeError("Conv2D.backward called before forward")
        N, F = self._x_shape[0], self.out_channels
        cols = self._cols
        if dout.shape[:2] != (N, F) or dout.shape[2] * dout.shape[3] != cols.shape[2]:
            raise ValueError(f"Conv2D.backward expected dout of the forward output's shape, got {dout.shape}")
        dout3 = dout.reshape(N, F, -1).astype(cols.dtype, copy=False)  # (N, F, H_out*W_out)
        W = self.params["W"]
        dW = np.matmul(dout3, cols.transpose(0, 2, 1)).sum(axis=0)      # (F, C*KH*KW)
        self.grads["W"] = dW.reshape(W.shape).astype(W.dtype, copy=False)
        if "b" in self.params:
            self.grads["b"] = dout3.sum(axis=(0, 2)).astype(W.dtype, copy=False)
        dcols = np.matmul(_as_dtype(W, cols.dtype).reshape(F, -1).T, dout3)  # (N, C*KH*KW, H_out*W_out)
        return col2im(dcols, self._x_shape, self.kernel_size, self.stride, self.padding)


# -- ReLU ---------------------------------------------------------------------------------------

class ReLU:
    """Elementwise max(x, 0).

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self._mask = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"ReLU expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout):
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        return dout * self._mask


# -- MaxPool2D ----------------------------------------------------------------------------------

class MaxPool2D:
    """Max over each KH x KW window, windows ``stride`` apart (no padding; a partial window at the edge is dropped).

    Backward sends each output gradient to the input that won its window; on a
    tie the first position in row-major order wins, as in PyTorch.  Like the
    convolution, both passes loop over the KH*KW offsets of the window only:
    offset (i, j) of every window is one strided slice of the input.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H_out, W_out),  H_out = (H - KH) // SH + 1,  W_out = (W - KW) // SW + 1
    """

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1)
        self.params, self.grads = {}, {}
        self._argmax = None
        self._x_shape = None

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
        _check_float_input("MaxPool2D", x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        KH, KW = self.kernel_size
        if H < KH or W < KW:
            raise ValueError(f"MaxPool2D kernel {KH}x{KW} is larger than the input {H}x{W} (input shape {x.shape})")
        _, H_out, W_out = self.output_shape(x.shape[1:])
        out = None
        argmax = np.zeros((N, C, H_out, W_out), dtype=np.uint8 if KH * KW < 256 else np.int32)
        for k, sh, sw in self._windows(H_out, W_out):
            candidate = x[:, :, sh, sw]
            if out is None:
                out = candidate.copy()
                continue
            better = candidate > out          # strict: the first maximum keeps its place on ties
            np.copyto(out, candidate, where=better)
            argmax[better] = k
        self._argmax, self._x_shape = argmax, x.shape
        return out

    def backward(self, dout):
        if self._argmax is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        if dout.shape != self._argmax.shape:
            raise ValueError(f"MaxPool2D.backward expected dout of shape {self._argmax.shape}, got {dout.shape}")
        N, C, H_out, W_out = dout.shape
        dx = np.zeros(self._x_shape, dtype=dout.dtype)
        zero = np.zeros((), dtype=dout.dtype)
        for k, sh, sw in self._windows(H_out, W_out):
            dx[:, :, sh, sw] += np.where(self._argmax == k, dout, zero)
        return dx


# -- Flatten ------------------------------------------------------------------------------------

class Flatten:
    """Flatten every axis but the batch axis.

    Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self._x_shape = None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"Flatten expected an array of shape (N, ...) with at least 2 dimensions, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return dout.reshape(self._x_shape)


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
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.params = {"W": _he_normal(rng, (self.in_features, self.out_features), self.in_features, dtype),
                       "b": np.zeros(self.out_features, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x = None

    def output_shape(self, input_shape):
        return (self.out_features,)

    def forward(self, x):
        _check_float_input("Dense", x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        self._x = x
        W, b = self.params["W"], self.params["b"]
        return x @ _as_dtype(W, x.dtype) + _as_dtype(b, x.dtype)

    def backward(self, dout):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        if dout.shape != (self._x.shape[0], self.out_features):
            raise ValueError(f"Dense.backward expected dout of shape {(self._x.shape[0], self.out_features)}, got {dout.shape}")
        W = self.params["W"]
        self.grads["W"] = (self._x.T @ dout).astype(W.dtype, copy=False)
        self.grads["b"] = dout.sum(axis=0).astype(W.dtype, copy=False)
        return dout @ _as_dtype(W, dout.dtype).T
