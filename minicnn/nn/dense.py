"""Dense: the fully connected layer, every input wired to every output."""
import numpy as np

from minicnn.nn import ops
from minicnn.nn.layer import Layer
from minicnn.nn.weights import as_dtype, he_normal, set_grad
from minicnn.utils.validation import check_float_input, float_dtype, positive_int


class Dense(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    The math is ``dense_forward`` / ``dense_backward`` (``minicnn.nn.textbook``; BLAS
    into given buffers in ``minicnn.engine.dense``).

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

    op = "dense"
    batch_separable = True

    def __init__(self, in_features, out_features, *, rng=None, dtype=np.float32):
        super().__init__()
        dtype = float_dtype(dtype)
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.params = {"W": he_normal(rng, (self.in_features, self.out_features), self.in_features, dtype),
                       "b": np.zeros(self.out_features, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._batch = None

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}

    @classmethod
    def param_shapes(cls, config):
        """W (in_features, out_features), b (out_features,)."""
        n_in, n_out = positive_int(config["in_features"], "in_features"), positive_int(config["out_features"], "out_features")
        return {"W": (n_in, n_out), "b": (n_out,)}

    def describe(self):
        return f"Dense({self.in_features}->{self.out_features})"

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense expects inputs of shape ({self.in_features},) per example, got {tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x):
        check_float_input("Dense", x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        W, b = as_dtype(self.params["W"], x.dtype), as_dtype(self.params["b"], x.dtype)
        self._forget()
        self._batch = x.shape[0]
        out, self._cache = ops.dense_forward(x, W, b)
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        if dout.shape != (self._batch, self.out_features):
            raise ValueError(f"Dense.backward expected dout of shape {(self._batch, self.out_features)}, got {dout.shape}")
        dx, dW, db = ops.dense_backward(dout, cache, need_dx)
        set_grad(self, "W", dW)
        set_grad(self, "b", db)
        return dx
