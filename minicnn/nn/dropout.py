"""Dropout: in training, a random half (or fraction p) of the activations is switched off at each step."""
from minicnn.nn import ops
from minicnn.nn.layer import Layer, check_float_array
from minicnn.utils.validation import check_rng, real_number


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The scaling keeps the expected output equal to the input, so evaluation mode
    (``training = False``, set by ``Sequential.eval()``) is the identity, forward
    and backward.  Backward multiplies by the same scaled mask as forward.

    The mask is drawn from ``rng`` (uniforms of x's shape, ``u >= p`` kept), so a
    seeded generator gives the same masks on every run, and on every implementation.

    Parameters
    ----------
    p : float in [0, 1), probability of zeroing an element (0.5 by default)
    rng : numpy.random.Generator, optional
        Source of the masks; without it a fresh unseeded generator is used.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    op = "dropout"

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        p = real_number(p, "Dropout p")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout p must be a probability in [0, 1), got {p!r}")
        self.p = p
        self.rng = check_rng(rng)
        self._identity = True

    @property
    def batch_separable(self):
        """In training a mask is drawn for the whole batch from ``rng``; in evaluation each example goes through alone."""
        return not self.training or self.p == 0

    def config(self):
        return {"p": self.p}

    def describe(self):
        return f"Dropout({self.p:g})"

    def forward(self, x):
        check_float_array("Dropout", x)
        self._forget()
        self._identity = not self.training or self.p == 0
        if self._identity:
            self._cache = ()                     # backward is the identity too
            return x
        out, self._cache = ops.dropout_forward(x, self.p, self.rng)
        return out

    def backward(self, dout, need_dx=True):
        cache = self._require_cache()
        if not need_dx:
            return None
        return dout if self._identity else ops.dropout_backward(dout, cache)
