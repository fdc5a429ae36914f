"""What every layer with parameters shares: He initialisation, parameters in the input's dtype, gradients written in place."""
import numpy as np

from minicnn.utils.validation import check_rng


def he_normal(rng, shape, fan_in, dtype):
    """``N(0, 2 / fan_in)``: the initial scale that keeps activations steady through ReLU layers (He et al., 2015)."""
    return (check_rng(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def as_dtype(array, dtype):
    """The parameter in the input's dtype (no copy when it already is)."""
    return array if array.dtype == dtype else array.astype(dtype)


def set_grad(layer, name, value):
    """Write a gradient into ``layer.grads[name]`` in place (in the parameter's dtype), or replace it if it no longer fits."""
    param, grad = layer.params[name], layer.grads.get(name)
    if grad is not None and grad.shape == param.shape and grad.dtype == param.dtype:
        np.copyto(grad, value, casting="unsafe")
    else:
        layer.grads[name] = np.array(value, dtype=param.dtype)
