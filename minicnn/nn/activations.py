"""Activation functions: element-wise non-linearities between the layers that have weights."""
import numpy as np

from minicnn.engine.elementwise import FastLeakyReLU, FastReLU, FastSigmoid, FastTanh
from minicnn.nn.engines import current_engine
from minicnn.utils.validation import real_number


def _check_input(layer, x):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{layer} expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")


class ReLU:
    """Elementwise max(x, 0).

    Runs on the fast engine by default (``minicnn.engine.elementwise.FastReLU``, the same
    formulas into reused buffers); ``use_engine("textbook")`` runs the code below.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastReLU()
        self._engine = None
        self._mask = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_input("ReLU", x)
        self._engine = current_engine()
        if self._engine == "fast":
            return self._fast.forward(x)
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("ReLU.backward called before forward")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        return dout * self._mask


class LeakyReLU:
    """Elementwise ``x if x > 0 else negative_slope * x``: a ReLU whose negative side keeps a small gradient.

    Runs on the fast engine by default (``minicnn.engine.elementwise.FastLeakyReLU``);
    ``use_engine("textbook")`` runs the code below.

    Parameters
    ----------
    negative_slope : float, 0.01 by default (as in PyTorch)

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self, negative_slope=0.01):
        self.negative_slope = real_number(negative_slope, "negative_slope")
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastLeakyReLU(self.negative_slope)
        self._engine = self._mask = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_input("LeakyReLU", x)
        self._engine = current_engine()
        if self._engine == "fast":
            return self._fast.forward(x)
        self._mask = x > 0
        return np.where(self._mask, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dout, need_dx=True):
        """dx = dout where x > 0, negative_slope * dout elsewhere."""
        if self._engine is None:
            raise RuntimeError("LeakyReLU.backward called before forward")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        return np.where(self._mask, dout, dout * dout.dtype.type(self.negative_slope))


class Tanh:
    """Elementwise hyperbolic tangent, ``(e^x - e^-x) / (e^x + e^-x)``, values in (-1, 1).

    Backward: ``d tanh(x) / dx = 1 - tanh(x)**2``, so only the output is kept.
    Runs on the fast engine by default (``minicnn.engine.elementwise.FastTanh``).

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastTanh()
        self._engine = self._out = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_input("Tanh", x)
        self._engine = current_engine()
        if self._engine == "fast":
            return self._fast.forward(x)
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("Tanh.backward called before forward")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        return dout * (1 - self._out * self._out)


class Sigmoid:
    """Elementwise logistic function ``1 / (1 + e^-x)``, values in (0, 1).

    Computed from ``z = e^-|x|`` (at most 1, so nothing overflows even at x = -1e4):
    ``1 / (1 + z)`` for x >= 0 and ``z / (1 + z)`` for x < 0, the same number.
    Backward: ``d s / dx = s * (1 - s)``.
    Runs on the fast engine by default (``minicnn.engine.elementwise.FastSigmoid``).

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastSigmoid()
        self._engine = self._out = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_input("Sigmoid", x)
        self._engine = current_engine()
        if self._engine == "fast":
            return self._fast.forward(x)
        z = np.exp(-np.abs(x))
        self._out = np.where(x >= 0, x.dtype.type(1), z) / (1 + z)
        return self._out

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("Sigmoid.backward called before forward")
        if not need_dx:
            return None
        if self._engine == "fast":
            return self._fast.backward(dout)
        return dout * self._out * (1 - self._out)
