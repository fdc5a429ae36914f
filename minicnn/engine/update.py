"""The fast optimizer update: the formulas of ``minicnn.nn.optim.SGD`` written into two reused buffers.

The textbook step makes a fresh array for every intermediate of every
parameter; this one writes them into two scratch arrays per parameter, with the
same operations in the same order, so the result is bit-for-bit the same.
"""
import numpy as np


def sgd_update(param, grad, velocity, buffers, *, lr, momentum, nesterov, weight_decay):
    """Update ``param`` (and ``velocity``, when momentum is on) in place.

    ``buffers`` is a pair of scratch arrays shaped like ``param``.
    """
    tmp, acc = buffers
    dtype = param.dtype
    g = grad.astype(dtype, copy=False)
    if weight_decay:
        g = np.add(g, np.multiply(np.asarray(weight_decay, dtype=dtype), param, out=tmp), out=acc)
    if momentum:
        velocity *= np.asarray(momentum, dtype=dtype)
        velocity += g
        g = np.add(g, np.multiply(np.asarray(momentum, dtype=dtype), velocity, out=tmp), out=acc) if nesterov else velocity
    param -= np.multiply(np.asarray(lr, dtype=dtype), g, out=tmp)
