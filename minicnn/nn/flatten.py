"""Flatten: the bridge from feature maps to a dense layer."""
import numpy as np

from minicnn.nn import ops
from minicnn.nn.layer import Layer


class Flatten(Layer):
    """Flatten every axis but the batch axis.

    On the fast engine, dx goes back in x's memory layout
    (``minicnn.engine.elementwise.flatten_backward``), so a conv or pool before it keeps its fast layout.

    Shape: x (N, d1, d2, ...) -> out (N, d1*d2*...); an empty batch (N = 0) gives an empty output
    """

    op = "flatten"
    batch_separable = True

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"Flatten expected an array of shape (N, ...) with at least 2 dimensions, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self._forget()
        out, self._cache = ops.flatten_forward(x)
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        return ops.flatten_backward(dout, cache) if need_dx else None
