"""Activation functions: element-wise non-linearities between the layers that have weights.

Each is one operation of ``minicnn.nn.ops`` (its math in ``minicnn.nn.textbook``,
its fast version in ``minicnn.engine.elementwise``); the classes only hold the cache.
"""
from minicnn.nn import ops
from minicnn.nn.layer import Layer, check_float_array
from minicnn.utils.validation import real_number


class _Elementwise(Layer):
    """A layer without parameters that maps each value on its own: ``ops.<op>_forward`` and ``ops.<op>_backward``.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def _arguments(self):
        """What the forward op takes after x."""
        return ()

    def forward(self, x):
        check_float_array(type(self).__name__, x)
        self._forget()
        out, self._cache = getattr(ops, f"{self.op}_forward")(x, *self._arguments())
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        return getattr(ops, f"{self.op}_backward")(dout, cache) if need_dx else None


class ReLU(_Elementwise):
    """Elementwise max(x, 0); backward ``dout * (x > 0)``.  Shape: x (any) -> out (same shape and dtype as x)"""

    op = "relu"
    batch_separable = True


class LeakyReLU(_Elementwise):
    """Elementwise ``x if x > 0 else negative_slope * x``: a ReLU whose negative side keeps a small gradient.

    Parameters
    ----------
    negative_slope : float, 0.01 by default (as in PyTorch)

    Shape: x (any) -> out (same shape and dtype as x)
    """

    op = "leaky_relu"
    batch_separable = True

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real_number(negative_slope, "negative_slope")

    def config(self):
        return {"negative_slope": self.negative_slope}

    def _arguments(self):
        return (self.negative_slope,)


class Tanh(_Elementwise):
    """Elementwise hyperbolic tangent, ``(e^x - e^-x) / (e^x + e^-x)``, values in (-1, 1).

    Backward: ``d tanh(x) / dx = 1 - tanh(x)**2``, so only the output is kept.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    op = "tanh"
    batch_separable = True


class Sigmoid(_Elementwise):
    """Elementwise logistic function ``1 / (1 + e^-x)``, values in (0, 1); backward ``s * (1 - s)``.

    Computed from ``z = e^-|x|`` (at most 1, so nothing overflows even at x = -1e4).

    Shape: x (any) -> out (same shape and dtype as x)
    """

    op = "sigmoid"
    batch_separable = True
