"""Batch normalisation: each channel rescaled to mean 0 and variance 1 over the batch, then by a learned gamma and beta.

The math, and the derivation of its backward, is ``batchnorm_forward`` /
``batchnorm_backward`` in ``minicnn.nn.textbook`` (loops in ``minicnn.nn.reference``,
fast in ``minicnn.engine.normalization``); the layers hold gamma, beta and the
running statistics, which go into the operation and come back updated.
"""
import numpy as np

from minicnn.nn import ops
from minicnn.nn.layer import Layer
from minicnn.nn.weights import as_dtype, set_grad
from minicnn.utils.validation import check_float_input, float_dtype, positive_int, real_number


class _BatchNorm(Layer):
    """What BatchNorm2D and BatchNorm1D share; they differ only in the axes a channel is averaged over."""

    op = "batchnorm"
    sums_over_parts = True      # the batch's statistics are sums: on a split batch the parts add theirs
    _ndim, _layout, _example = None, None, None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, *, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        dtype = float_dtype(dtype)
        self.num_features = positive_int(num_features, "num_features")
        self.eps = real_number(eps, f"{name} eps", 0, strict=True)
        self.momentum = real_number(momentum, f"{name} momentum", 0)
        if self.momentum > 1:
            raise ValueError(f"{name} momentum must be in [0, 1], got {momentum!r}")
        if not isinstance(affine, (bool, np.bool_)):
            raise ValueError(f"{name} affine must be True or False, got {affine!r}")
        self.affine = bool(affine)
        C = self.num_features
        self.params = {"gamma": np.ones(C, dtype), "beta": np.zeros(C, dtype)} if self.affine else {}
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}
        self.buffers = {"running_mean": np.zeros(C, dtype), "running_var": np.ones(C, dtype)}
        self._x_shape = None

    @property
    def batch_separable(self):
        """In training the statistics are taken over the batch; in evaluation each example uses the running ones."""
        return not self.training

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum, "affine": self.affine}

    @classmethod
    def param_shapes(cls, config):
        """gamma, beta (num_features,) when affine; running_mean, running_var (num_features,)."""
        C = positive_int(config["num_features"], "num_features")
        return {**({"gamma": (C,), "beta": (C,)} if config.get("affine", True) else {}),
                "running_mean": (C,), "running_var": (C,)}

    def describe(self):
        return f"{type(self).__name__}({self.num_features})"

    def output_shape(self, input_shape):
        if len(input_shape) != self._ndim - 1 or input_shape[0] != self.num_features:
            raise ValueError(f"{type(self).__name__} expects inputs of shape "
                             f"{self._example.replace('C', str(self.num_features))} per example, got {tuple(input_shape)}")
        return tuple(input_shape)

    def _check_input(self, x):
        name, layout = type(self).__name__, self._layout.replace("C", str(self.num_features))
        check_float_input(name, x, self._ndim, layout)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name} expected input of shape {layout}, got {x.shape}: "
                             f"{x.shape[1]} channels instead of {self.num_features}")
        n = x.size // self.num_features
        if self.training and n < 2:
            raise ValueError(f"{name} in training needs more than one value per channel to take a variance, "
                             f"got input of shape {x.shape}; use eval mode for single examples")

    def _affine(self, dtype):
        if self.affine:
            return as_dtype(self.params["gamma"], dtype), as_dtype(self.params["beta"], dtype)
        return np.ones(self.num_features, dtype), np.zeros(self.num_features, dtype)

    def forward(self, x):
        out, self._cache = self._normalise(x, ops.batchnorm_forward)
        return out

    def _normalise(self, x, run):
        """Check x, let the last cache go and ``run(x, gamma, beta, running_mean, running_var, training, momentum,
        eps)`` -> (out, mean, var, cache); keep the new running statistics.  Returns (out, cache)."""
        self._check_input(x)
        gamma, beta = self._affine(x.dtype)
        self._forget()
        self._x_shape = x.shape
        running = self.buffers["running_mean"], self.buffers["running_var"]
        out, mean, var, cache = run(x, gamma, beta, *running, self.training, self.momentum, self.eps)
        if self.training:
            np.copyto(running[0], mean, casting="unsafe")
            np.copyto(running[1], var, casting="unsafe")
        return out, cache

    def backward(self, dout, need_dx=True):
        """Fill ``grads["gamma"]``, ``grads["beta"]`` (when affine) and return dx (None with need_dx=False)."""
        cache = self._require_cache()
        if dout.shape != self._x_shape:
            raise ValueError(f"{type(self).__name__}.backward expected dout of the input's shape {self._x_shape}, "
                             f"got {dout.shape}")
        return self._set_grads(*ops.batchnorm_backward(dout, cache, need_dx))

    def _set_grads(self, dx, dgamma, dbeta):
        if self.affine:
            set_grad(self, "gamma", dgamma)
            set_grad(self, "beta", dbeta)
        return dx

    # -- with the max-pool after it, as one operation (``Sequential`` on the fast engine: minicnn/nn/order.py) --

    def forward_pooled(self, pool, x):
        """``pool.forward(self.forward(x))`` as one operation, ``ops.batchnorm_maxpool2d_forward``; each layer keeps
        its own cache, so each layer's ``backward`` works as after its own forward."""
        def run(x, *args):
            pool._check_input(x)                        # the batch norm's output has x's shape
            pool._forget()
            return ops.batchnorm_maxpool2d_forward(x, *args, pool.kernel_size, pool.stride)

        out, cache = self._normalise(x, run)
        self._cache, pool._cache = ops.split_cache(cache)
        return out

    def backward_pooled(self, pool, dout, need_dx=True):
        """``self.backward(pool.backward(dout), need_dx)`` as one operation, ``ops.batchnorm_maxpool2d_backward``
        (or the two apart, when different implementations ran their forwards)."""
        cache = ops.joined_cache(self._require_cache(), pool._require_cache())
        if cache is None:
            return self.backward(pool.backward(dout), need_dx)
        pool._check_dout(dout)
        return self._set_grads(*ops.batchnorm_maxpool2d_backward(dout, cache, need_dx))


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of each channel of (N, C, H, W) over N, H and W (``torch.nn.BatchNorm2d``).

    In training: ``out = gamma * (x - mean) / sqrt(var + eps) + beta`` with the
    batch's mean and biased variance per channel, and the running statistics updated
    ``running = (1 - momentum) * running + momentum * batch`` (the unbiased
    variance, n / (n - 1) times the biased one, goes into ``running_var``).  In
    evaluation (``training = False``, set by ``Sequential.eval()``) the running
    statistics normalise instead.  The backward is derived in ``minicnn.nn.textbook``.

    The loop version is ``minicnn.nn.reference.batchnorm_naive``.

    Parameters
    ----------
    num_features : int, C
    eps : float > 0, added to the variance (1e-5)
    momentum : float in [0, 1], weight of the new batch in the running statistics (0.1)
    affine : bool, whether to learn ``params["gamma"]`` (ones) and ``params["beta"]`` (zeros)
    dtype : float32 by default (parameters and buffers)

    Shape:
        x: (N, C, H, W) -> out: (N, C, H, W)
        gamma, beta, buffers["running_mean"], buffers["running_var"]: (C,)
    """

    _ndim, _layout, _example = 4, "(N, C, H, W)", "(C, H, W)"


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of each feature of (N, D) over the batch (``torch.nn.BatchNorm1d`` on 2-D input).

    The same as ``BatchNorm2D`` with n = N values per feature; parameters and
    buffers have shape (D,).

    Shape: x (N, D) -> out (N, D)
    """

    _ndim, _layout, _example = 2, "(N, C)", "(C,)"
