"""The fast optimizer updates: the formulas of ``minicnn.nn.textbook`` written into two pooled buffers.

The textbook update makes a fresh array for every intermediate of every
parameter; these write them into two scratch arrays per parameter, with the
same operations in the same order, so the result is bit-for-bit the same.
Every scalar is cast to the parameter's dtype first (no float64 promotion).
The signatures are the textbook's: ``param`` and the arrays of ``state`` change in place.
"""
import numpy as np

from minicnn.engine.buffers import buffer


def _scratch(param):
    return buffer("update.tmp", param.shape, param.dtype), buffer("update.acc", param.shape, param.dtype)


def sgd_update(param, grad, state, *, lr, momentum, nesterov, weight_decay):
    """``minicnn.nn.textbook.sgd_update``: ``param`` (and ``state["velocity"]``, with momentum) in place."""
    tmp, acc = _scratch(param)
    velocity = state.get("velocity")
    dtype = param.dtype
    g = grad.astype(dtype, copy=False)
    if weight_decay:
        g = np.add(g, np.multiply(np.asarray(weight_decay, dtype=dtype), param, out=tmp), out=acc)
    if momentum:
        velocity *= np.asarray(momentum, dtype=dtype)
        velocity += g
        g = np.add(g, np.multiply(np.asarray(momentum, dtype=dtype), velocity, out=tmp), out=acc) if nesterov else velocity
    param -= np.multiply(np.asarray(lr, dtype=dtype), g, out=tmp)


def adam_update(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """``minicnn.nn.textbook.adam_update`` (Adam's, and AdamW's with ``decoupled``), in place."""
    tmp, acc = _scratch(param)
    exp_avg, exp_avg_sq, max_exp_avg_sq = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    dtype = param.dtype
    as_param = lambda v: np.asarray(v, dtype=dtype)     # every scalar in the parameter's dtype
    if decoupled and weight_decay:
        param *= as_param(1 - lr * weight_decay)
    g = grad.astype(dtype, copy=False)
    if weight_decay and not decoupled:
        g = np.add(g, np.multiply(as_param(weight_decay), param, out=tmp), out=acc)
    exp_avg *= as_param(beta1)                                   # m = b1 * m + (1 - b1) * g
    exp_avg += np.multiply(as_param(1 - beta1), g, out=tmp)
    exp_avg_sq *= as_param(beta2)                                # v = b2 * v + (1 - b2) * g * g
    np.multiply(as_param(1 - beta2), g, out=tmp)
    tmp *= g
    exp_avg_sq += tmp
    v = exp_avg_sq
    if max_exp_avg_sq is not None:
        v = np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    denom = np.sqrt(v, out=tmp)                           # sqrt(v) / sqrt(1 - b2**t) + eps
    denom /= as_param(bias_correction2_sqrt)
    denom += as_param(eps)
    update = np.multiply(as_param(step_size), exp_avg, out=acc)  # lr / (1 - b1**t) * m / denom
    update /= denom
    param -= update


def rmsprop_update(param, grad, state, *, lr, alpha, eps, momentum, weight_decay):
    """``minicnn.nn.textbook.rmsprop_update``, in place."""
    tmp, acc = _scratch(param)
    square_avg, momentum_buffer = state["square_avg"], state.get("momentum_buffer")
    dtype = param.dtype
    as_param = lambda v: np.asarray(v, dtype=dtype)     # every scalar in the parameter's dtype
    g = grad.astype(dtype, copy=False)
    if weight_decay:
        g = np.add(g, np.multiply(as_param(weight_decay), param, out=tmp), out=acc)
    square_avg *= as_param(alpha)                                # s = alpha * s + (1 - alpha) * g * g
    np.multiply(as_param(1 - alpha), g, out=tmp)
    tmp *= g
    square_avg += tmp
    avg = np.sqrt(square_avg, out=tmp)                    # sqrt(s) + eps
    avg += as_param(eps)
    if momentum:
        momentum_buffer *= as_param(momentum)                    # b = momentum * b + g / avg
        momentum_buffer += np.divide(g, avg, out=tmp)
        param -= np.multiply(as_param(lr), momentum_buffer, out=tmp)
    else:
        update = np.multiply(as_param(lr), g, out=acc)           # lr * g / avg
        update /= avg
        param -= update
