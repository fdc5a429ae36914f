"""Batch normalisation: each channel rescaled to mean 0 and variance 1 over the batch, then by a learned gamma and beta.

Backward, per channel, over its n = N*H*W values (N for BatchNorm1D), with
xhat = (x - mu) / sigma, sigma = sqrt(mean((x - mu)^2) + eps), y = gamma * xhat + beta:

    d mu / d x_j = 1/n,    d sigma / d x_j = (x_j - mu) / (n sigma) = xhat_j / n
    d xhat_i / d x_j = (delta_ij - 1/n) / sigma - xhat_i / sigma * xhat_j / n
    dx_j = sum_i gamma dy_i d xhat_i / d x_j = (gamma / sigma) / n * (n dy_j - sum_i dy_i - xhat_j sum_i dy_i xhat_i)
    dgamma = sum_i dy_i xhat_i,    dbeta = sum_i dy_i
    (evaluation: mu and sigma are fixed running statistics, so dx_j = gamma / sigma * dy_j)
"""
import numpy as np

from minicnn.engine.normalization import FastBatchNorm
from minicnn.nn.engines import current_engine
from minicnn.nn.weights import as_dtype, set_grad
from minicnn.utils.validation import check_float_input, float_dtype, positive_int, real_number


class _BatchNorm:
    """What BatchNorm2D and BatchNorm1D share; they differ only in the axes a channel is averaged over."""

    _ndim, _layout, _example, _axes = None, None, None, None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, *, dtype=np.float32):
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
        self.training = True
        self._fast = FastBatchNorm()
        self._engine = self._x_shape = self._xhat = self._inv_std = self._gamma = None
        self._trained = True          # whether the last forward used the batch statistics

    def output_shape(self, input_shape):
        if len(input_shape) != self._ndim - 1 or input_shape[0] != self.num_features:
            raise ValueError(f"{type(self).__name__} expects inputs of shape "
                             f"{self._example.replace('C', str(self.num_features))} per example, got {tuple(input_shape)}")
        return tuple(input_shape)

    def _shape(self):
        """How a per-channel vector (C,) broadcasts against x: (1, C, 1, 1) or (1, C)."""
        return (1, self.num_features) + (1,) * (self._ndim - 2)

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

    def _update_running(self, mean, var, n):
        """``running = (1 - momentum) * running + momentum * batch``, with the unbiased variance, as in PyTorch."""
        m = self.momentum
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - m
        rm += m * mean.astype(rm.dtype)
        rv *= 1 - m
        rv += m * (var * (n / (n - 1))).astype(rv.dtype)

    def forward(self, x):
        self._check_input(x)
        gamma, beta = self._affine(x.dtype)
        n = x.size // self.num_features
        self._engine, self._trained, self._x_shape = current_engine(), self.training, x.shape
        running = None if self.training else (as_dtype(self.buffers["running_mean"], x.dtype),
                                              as_dtype(self.buffers["running_var"], x.dtype))
        if self._engine == "fast":
            out, mean, var = self._fast.forward(x, gamma, beta, self.eps, *(running or ()))
        else:
            if self.training:
                mean, var = x.mean(axis=self._axes), x.var(axis=self._axes)     # the biased variance normalises
            else:
                mean, var = running
            self._inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
            self._xhat = (x - mean.reshape(self._shape())) * self._inv_std.reshape(self._shape())
            self._gamma = gamma
            out = self._xhat * gamma.reshape(self._shape()) + beta.reshape(self._shape())
        if self.training:
            self._update_running(mean, var, n)
        return out

    def backward(self, dout, need_dx=True):
        """Fill ``grads["gamma"]``, ``grads["beta"]`` (when affine) and return dx (None with need_dx=False)."""
        if self._engine is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if dout.shape != self._x_shape:
            raise ValueError(f"{type(self).__name__}.backward expected dout of the input's shape {self._x_shape}, "
                             f"got {dout.shape}")
        if self._engine == "fast":
            dx, dgamma, dbeta = self._fast.backward(dout, need_dx)
        else:
            xhat, shape = self._xhat, self._shape()
            n = dout.size // self.num_features
            dbeta, dgamma = dout.sum(axis=self._axes), (dout * xhat).sum(axis=self._axes)
            dx = None
            if need_dx and self._trained:          # through the batch statistics
                dx = (self._gamma * self._inv_std / n).reshape(shape) * (
                    n * dout - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
            elif need_dx:                          # fixed running statistics: an affine map
                dx = dout * (self._gamma * self._inv_std).reshape(shape)
        if self.affine:
            set_grad(self, "gamma", dgamma)
            set_grad(self, "beta", dbeta)
        return dx


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of each channel of (N, C, H, W) over N, H and W (``torch.nn.BatchNorm2d``).

    In training: ``out = gamma * (x - mean) / sqrt(var + eps) + beta`` with the
    batch's mean and biased variance per channel, and the running statistics updated
    ``running = (1 - momentum) * running + momentum * batch`` (the unbiased
    variance, n / (n - 1) times the biased one, goes into ``running_var``).  In
    evaluation (``training = False``, set by ``Sequential.eval()``) the running
    statistics normalise instead.  The backward is derived in this module's docstring.

    Runs on the fast engine by default (``minicnn.engine.normalization.FastBatchNorm``);
    ``use_engine("textbook")`` runs the code here.  The loop version is
    ``minicnn.nn.reference.batchnorm_naive``.

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

    _ndim, _layout, _example, _axes = 4, "(N, C, H, W)", "(C, H, W)", (0, 2, 3)


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of each feature of (N, D) over the batch (``torch.nn.BatchNorm1d`` on 2-D input).

    The same as ``BatchNorm2D`` with n = N values per feature; parameters and
    buffers have shape (D,).

    Shape: x (N, D) -> out (N, D)
    """

    _ndim, _layout, _example, _axes = 2, "(N, C)", "(C,)", (0,)
