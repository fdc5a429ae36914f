"""Dense: the fully connected layer, every input wired to every output."""
import numpy as np

from minicnn.engine.dense import dense_backward, dense_forward
from minicnn.nn.engines import current_engine
from minicnn.nn.weights import as_dtype, he_normal, set_grad
from minicnn.utils.validation import check_float_input, float_dtype, positive_int


class Dense:
    """Fully connected layer: ``out = x @ W + b``.

    Runs on the fast engine by default (``minicnn.engine.dense``: BLAS into given
    buffers); ``use_engine("textbook")`` runs the code below.

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
        dtype = float_dtype(dtype)
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.params = {"W": he_normal(rng, (self.in_features, self.out_features), self.in_features, dtype),
                       "b": np.zeros(self.out_features, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.training = True
        self._x = self._engine = None
        self._buffers = {}

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense expects inputs of shape ({self.in_features},) per example, got {tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x):
        check_float_input("Dense", x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        self._x, self._engine = x, current_engine()
        W, b = as_dtype(self.params["W"], x.dtype), as_dtype(self.params["b"], x.dtype)
        if self._engine == "fast":
            return dense_forward(x, W, b)
        return x @ W + b

    def backward(self, dout, need_dx=True):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        x = self._x
        if dout.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Dense.backward expected dout of shape {(x.shape[0], self.out_features)}, got {dout.shape}")
        W = as_dtype(self.params["W"], dout.dtype)
        if self._engine == "fast":
            dx, dW, db = dense_backward(x, W, dout, self.grads.get("W") if self.params["W"].dtype == x.dtype else None,
                                        self._buffers, need_dx)
        else:
            dW, db = x.T @ dout, dout.sum(axis=0)
            dx = dout @ W.T if need_dx else None
        if dW is not self.grads.get("W"):
            set_grad(self, "W", dW)
        set_grad(self, "b", db)
        return dx
