"""A batch split over the engine's threads, for ``Sequential``: each part runs every layer alone on its thread.

With several engine threads (``minicnn.engine.threads``) the fast implementation
already cuts each big pass of a layer over the batch, but that costs a hand-off
to the other thread at every pass.  When every layer treats each example on its
own (``Layer.batch_separable``), the whole model can be split instead: each
thread takes a part of the batch through every layer's forward, then through
every backward, on *copies* of the layers that share the parameters and keep
their own cache and ``grads``; each gradient is then the sum of the parts', in
order.  Two hand-offs per pass instead of one per layer.

A batch norm in training looks across the batch, but only through sums (its
mean and variance, and in backward the sums of dout and dout * xhat): it splits
too (``Layer.sums_over_parts``).  Its parts then run *together*: at each such
sum they wait for each other and add their shares (``threads.sum_over_parts``),
so every part normalises by the whole batch's statistics.

The output and the input's gradient are the unsplit batch's, example by example
(with a batch norm, up to the rounding of its sums, now grouped by part; on
oneMKL, the ``mkl`` extra, up to the rounding of a product of fewer rows, which
it may sum in another order); each parameter's gradient is the same sum with its
terms grouped by part (one more rounding).  The parts are fixed by the batch size
and the thread count (``ops.batch_parts``), so one thread setting gives one result.
"""
import copy

import numpy as np

from minicnn.nn import ops
from minicnn.nn.weights import set_grad


def splits(layer):
    """Whether ``layer`` may run on a part of the batch: one of minicnn's own layers that treats each example
    alone (``batch_separable``), or whose only look across the batch is sums the parts add (``sums_over_parts``).

    A layer of your own class never splits: its forward might keep state, or look across the batch.
    """
    return type(layer).__module__.startswith("minicnn.") and (
        getattr(layer, "batch_separable", False) or getattr(layer, "sums_over_parts", False))


def _together(layers):
    """Whether the parts must add their sums to each other: some layer looks across the batch (through sums)."""
    return any(not getattr(layer, "batch_separable", False) for layer in layers)


def batch_parts(layers, x):
    """The [lo, hi) parts to split the batch ``x`` into, or None to run it whole."""
    if not isinstance(x, np.ndarray) or x.ndim == 0 or not all(splits(layer) for layer in layers):
        return None
    ranges = ops.batch_parts(len(x), in_turn=not _together(layers))   # parts that add sums must run at once
    return ranges if len(ranges) > 1 else None


class Split:
    """One split forward, kept for its backward: the parts' ranges, their copies of the layers, the output's shape."""

    def __init__(self, layers, ranges, part_grads):
        self.layers, self.ranges = layers, ranges
        # part_grads[(k, i)] is the grads dict of part k's copy of layer i, kept between steps (filled in place).
        self.copies = [[self._copy(layer, part_grads.setdefault((k, i), {})) for i, layer in enumerate(layers)]
                       for k in range(len(ranges))]
        self.out_shape = None
        self.together = _together(layers)

    @staticmethod
    def _copy(layer, grads):
        part = copy.copy(layer)                 # the same params (and buffers) dicts, read only
        part.grads, part._cache = grads, None
        return part

    def forward(self, x):
        """Shape: x (N, ...) -> the last layer's output (N, ...), a new array."""
        for layer in self.layers:
            layer._forget()                     # the parts' copies keep the caches now

        def part(k, lo, hi):
            h = x[lo:hi]
            for layer in self.copies[k]:
                h = layer.forward(h)
            return h

        out = np.concatenate(ops.run_parts(part, self.ranges, self.together))
        self.out_shape = out.shape
        return out

    def backward(self, dout, walk, need_input_grad):
        """``walk(layers, dout_part, need_input_grad)`` on every part; the layers' grads become the parts' sums.

        Shape: dout like the output -> None, or dx (N, ...) like the input
        """
        if np.shape(dout) != self.out_shape:
            raise ValueError(f"Sequential.backward expected dout of the forward output's shape {self.out_shape}, "
                             f"got {np.shape(dout)}")
        dxs = ops.run_parts(lambda k, lo, hi: walk(self.copies[k], dout[lo:hi], need_input_grad), self.ranges,
                            self.together)
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                first, *more = [copies[i].grads[key] for copies in self.copies]
                set_grad(layer, key, first)
                for part in more:                              # the parts' sum, in order
                    np.add(layer.grads[key], part, out=layer.grads[key])
        return np.concatenate(dxs) if need_input_grad else None
