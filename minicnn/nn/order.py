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
"""
from minicnn.nn import ops
from minicnn.nn.activations import ReLU
from minicnn.nn.pooling import MaxPool2D


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
