"""What every layer is: the ``Layer`` base, and ``LAYERS``, every layer class by name.

A layer holds what persists (``params``, their ``grads``, ``training``, its
cache between forward and backward) and asks ``minicnn.nn.ops`` for the math;
it never chooses an implementation itself.  It describes itself once:
``config()`` gives its constructor arguments as plain JSON values, and
``from_config`` builds it back; architectures, export and the gradient checker
read layers through that.
"""
import inspect

import numpy as np

from minicnn.nn import ops

LAYERS = {}          # class name -> class, for every public Layer subclass of minicnn (and any you define)


class Layer:
    """The layer contract, executable.

    - ``forward(x)`` returns the output and keeps what backward needs (the cache);
    - ``backward(dout, need_dx=True)`` returns dx (None when ``need_dx`` is False) and
      *overwrites* ``grads[name]`` for each parameter, so nobody zeroes gradients;
    - ``params`` and ``grads`` are dicts with the same keys (empty without parameters);
    - ``training`` is True at construction; ``Sequential.train()`` / ``eval()`` set it;
    - ``output_shape(input_shape)`` is the per-example shape out (the same by default);
    - ``config()`` / ``from_config()`` describe and rebuild the layer;
    - ``op`` names the operation of ``minicnn.nn.ops`` it runs (for ``Sequential.summary``).

    A subclass whose name starts with an underscore, or that passes
    ``register=False`` (``class Mine(Layer, register=False)``), stays out of ``LAYERS``.
    """

    op = None
    # True when forward and backward treat every example on its own (no statistic across the batch, no
    # random draw), so that ``Sequential`` may run parts of a batch on different threads.
    batch_separable = False
    # True when the only thing forward and backward take across the batch is sums (a batch norm's statistics),
    # which the fast engine adds over the parts of a split batch: ``Sequential`` may then split it too.
    sums_over_parts = False

    def __init_subclass__(cls, register=True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register and not cls.__name__.startswith("_"):
            LAYERS[cls.__name__] = cls

    def __init__(self):
        self.params, self.grads = {}, {}
        self.training = True
        self._cache = None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def _require_cache(self):
        """The cache of the last forward, or a clear error when there was none."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def _forget(self):
        """Let the last forward's cache go, so that its buffers can serve the next forward (call it first)."""
        self._cache = None

    # -- describing itself -------------------------------------------------------------------------

    def config(self):
        """The constructor arguments that rebuild this layer, as JSON values (pairs as lists). None by default."""
        return {}

    @classmethod
    def arguments(cls):
        """{argument: default} of the constructor as a config names them (``inspect.Parameter.empty``: required).

        ``rng`` and ``dtype`` are not part of a config: ``from_config`` passes them.
        """
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in params
                if p.name not in ("self", "rng", "dtype") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    @classmethod
    def check_config(cls, config):
        """Raise ValueError unless ``config`` names only arguments of this layer and every required one."""
        allowed = cls.arguments()
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(f"{cls.__name__} has unknown arguments {unknown}; expected some of {sorted(allowed)}")
        missing = sorted(k for k, default in allowed.items() if default is inspect.Parameter.empty and k not in config)
        if missing:
            raise ValueError(f"{cls.__name__} lacks required arguments {missing}")

    @classmethod
    def from_config(cls, config, *, rng=None, dtype=np.float32):
        """A fresh layer from ``config()``'s dict; ``rng`` and ``dtype`` go to constructors that take them."""
        cls.check_config(config)
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items()}
        takes = inspect.signature(cls.__init__).parameters
        kwargs.update({k: v for k, v in (("rng", rng), ("dtype", dtype)) if k in takes})
        return cls(**kwargs)

    @classmethod
    def param_shapes(cls, config):
        """{name: shape} of the parameters and buffers a layer of this ``config`` has, without allocating them."""
        return {}

    def describe(self):
        """A short label, e.g. ``Conv2D(1->8, 3x3)``; the class name by default."""
        return type(self).__name__

    def runs_on(self):
        """Which implementation runs this layer's operation now (``ops.describe``), or '' without one."""
        return ops.describe((self.op,)) if self.op else ""


def check_float_array(layer, x):
    """Raise ValueError unless x is a floating-point NumPy array (element-wise layers take any shape)."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{layer} expected a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
