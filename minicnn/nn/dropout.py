"""Dropout: in training, a random half (or fraction p) of the activations is switched off at each step."""
import numpy as np

from minicnn.engine.elementwise import FastDropout
from minicnn.nn.engines import current_engine
from minicnn.utils.validation import check_rng, real_number


class Dropout:
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The scaling keeps the expected output equal to the input, so evaluation mode
    (``training = False``, set by ``Sequential.eval()``) is the identity, forward
    and backward.  Backward multiplies by the same scaled mask as forward.

    The mask is drawn from ``rng`` (uniforms of x's shape, ``u >= p`` kept), so a
    seeded generator gives the same masks on every run, and on both engines.
    Runs on the fast engine by default (``minicnn.engine.elementwise.FastDropout``).

    Parameters
    ----------
    p : float in [0, 1), probability of zeroing an element (0.5 by default)
    rng : numpy.random.Generator, optional
        Source of the masks; without it a fresh unseeded generator is used.

    Shape: x (any) -> out (same shape and dtype as x)
    """

    def __init__(self, p=0.5, *, rng=None):
        p = real_number(p, "Dropout p")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout p must be a probability in [0, 1), got {p!r}")
        self.p = p
        self.rng = check_rng(rng)
        self.params, self.grads = {}, {}
        self.training = True
        self._fast = FastDropout()
        self._engine = self._mask = None
        self._identity = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"Dropout expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
        self._engine = current_engine()
        self._identity = not self.training or self.p == 0
        if self._identity:
            return x
        draw = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)   # Generator.random draws only these
        if self._engine == "fast":
            return self._fast.forward(x, self.p, self.rng, draw)
        keep = self.rng.random(x.shape, dtype=draw) >= draw.type(self.p)
        self._mask = keep * x.dtype.type(1 / (1 - self.p))                     # 0 or 1/(1-p), in x's dtype
        return x * self._mask

    def backward(self, dout, need_dx=True):
        if self._engine is None:
            raise RuntimeError("Dropout.backward called before forward")
        if not need_dx:
            return None
        if self._identity:
            return dout
        if self._engine == "fast":
            return self._fast.backward(dout)
        return dout * self._mask
