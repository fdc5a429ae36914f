"""Activation functions: element-wise non-linearities between the layers that have weights."""
import numpy as np

from minicnn.engine.elementwise import FastReLU
from minicnn.nn.engines import current_engine


class ReLU:
    """Elementwise max(x, 0).

    Runs on the fast engine by default (``minicnn.engine.elementwise.FastReLU``, the same
    formulas into reused buffers); ``use_engine("textbook")`` runs the code below.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self._fast = FastReLU()
        self._engine = None
        self._mask = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"ReLU expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
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
