"""Flatten: the bridge from feature maps to a dense layer."""
import numpy as np

from minicnn.engine.elementwise import unflatten_like
from minicnn.nn.engines import current_engine


class Flatten:
    """Flatten every axis but the batch axis.

    On the fast engine, dx goes back in x's memory layout
    (``minicnn.engine.elementwise.unflatten_like``), so a conv or pool before it keeps its fast layout.

    Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...); an empty batch (N = 0) gives an empty output
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._x_shape = self._x_strides = self._engine = None
        self._buffers = {}

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"Flatten expected an array of shape (N, ...) with at least 2 dimensions, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self._x_shape, self._x_strides, self._engine = x.shape, x.strides, current_engine()
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))   # not -1: an empty batch has no size to infer from

    def backward(self, dout, need_dx=True):
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        if not need_dx:
            return None
        if self._engine == "fast":
            return unflatten_like(dout, self._x_shape, self._x_strides, self._buffers)
        return dout.reshape(self._x_shape)
