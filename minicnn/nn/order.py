"""The order ``Sequential`` runs its layers in: as written, except that a max-pool after a ReLU runs first.

A ReLU and the max-pool after it commute.  ReLU never changes which value of a
window is largest, so ``maxpool(relu(x)) == relu(maxpool(x))``; and the
gradients agree too.  Where a window's maximum is positive, both orders send its
gradient to the same input (the first maximum).  Where it is not, the gradient
is 0 either way: ReLU's mask stops it, before the pool in one order and after it
in the other.  With the max-pool first, the ReLU's forward and backward run on
the pooled map: a quarter of the values for a 2x2 pool.

``run_order`` swaps each such pair when both operations run on the fast engine
(``ops.resolve``): on the textbook and the loops, and with your own
implementations registered, the layers run exactly as written.  Only minicnn's
own ``ReLU`` and ``MaxPool2D`` swap, not a subclass.  The layers themselves do
not change: each keeps the cache of its own forward, and ``Sequential.backward``
walks the same order in reverse.

A batch norm and the max-pool after it (after that swap, BN-CNN's conv, batch
norm, max-pool, ReLU) run as one operation on the fast engine,
``ops.batchnorm_maxpool2d_forward`` and ``_backward`` (``run_forward`` and
``run_backward``): the same numbers as the two apart, to the last bit, with a
pass over the batch norm's output less each way (``minicnn.engine.pairs``).
"""
from minicnn.nn import ops
from minicnn.nn.activations import ReLU
from minicnn.nn.normalization import BatchNorm2D
from minicnn.nn.pooling import MaxPool2D

_PAIR_OPS = ("batchnorm", "maxpool2d", "batchnorm_maxpool2d")


def run_order(layers):
    """``layers`` as a new list, with each ``ReLU`` that is followed by a ``MaxPool2D`` moved after it (fast engine only)."""
    order = list(layers)
    if ops.resolve("relu") != "fast" or ops.resolve("maxpool2d") != "fast":
        return order
    i = 0
    while i < len(order) - 1:
        if type(order[i]) is ReLU and type(order[i + 1]) is MaxPool2D:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    return order


def _paired(layers, i):
    """Whether ``layers[i]`` and ``layers[i + 1]`` run as one operation: minicnn's own ``BatchNorm2D``, then its
    own ``MaxPool2D``, with the three operations on the fast engine."""
    return (0 <= i < len(layers) - 1 and type(layers[i]) is BatchNorm2D and type(layers[i + 1]) is MaxPool2D
            and all(ops.resolve(op) == "fast" for op in _PAIR_OPS))


def run_forward(layers, x):
    """``x`` through each layer's forward in turn (a batch norm and the max-pool after it as one operation)."""
    i = 0
    while i < len(layers):
        if _paired(layers, i):
            x = layers[i].forward_pooled(layers[i + 1], x)
            i += 2
        else:
            x = layers[i].forward(x)
            i += 1
    return x


def run_backward(layers, dout, need_input_grad, backward_of):
    """Walk ``layers`` in reverse from ``dout`` (a max-pool and the batch norm before it as one operation);
    ``backward_of(layer, dout, need_dx)`` runs one layer's backward.  The first layer's dx, or None unless
    ``need_input_grad``."""
    i = len(layers) - 1
    while i >= 0:
        if _paired(layers, i - 1):
            dout = layers[i - 1].backward_pooled(layers[i], dout, need_dx=i > 1 or need_input_grad)
            i -= 2
        else:
            dout = backward_of(layers[i], dout, i > 0 or need_input_grad)
            i -= 1
    return dout if need_input_grad else None
