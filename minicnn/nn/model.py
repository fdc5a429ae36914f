"""Sequential: a stack of layers, run forward in order and backward in reverse."""
import inspect

import numpy as np

from minicnn.nn import ops, split
from minicnn.nn.order import run_backward, run_forward, run_order


def _takes_need_dx(layer):
    """Whether ``layer.backward`` accepts the ``need_dx`` keyword (every minicnn layer does; your own may not)."""
    try:
        params = inspect.signature(layer.backward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "need_dx" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _backward_of(layer, dout, need_dx):
    if need_dx:
        return layer.backward(dout)
    if _takes_need_dx(layer):
        return layer.backward(dout, need_dx=False)
    layer.backward(dout)
    return None


def _backward_through(layers, dout, need_input_grad):
    """Walk ``layers`` in reverse from ``dout``; the first layer's dx, or None unless ``need_input_grad``."""
    return run_backward(layers, dout, need_input_grad, _backward_of)


class Sequential:
    """Layers applied one after the other.

    ``forward`` feeds each layer's output to the next; ``backward`` takes the
    gradient of the loss with respect to the model's output and walks the
    layers in reverse, each filling its own ``grads``.  Parameters are named
    ``"<layer index>.<param name>"``, e.g. ``"0.W"`` for the first layer's weights;
    buffers (statistics a layer keeps that are not trained, such as a batch
    norm's running mean, in its ``buffers`` dict) likewise, e.g. ``"1.running_mean"``.

    ``train()`` and ``eval()`` set every layer's ``training`` flag (layers such
    as dropout and batch norm behave differently in the two modes).

    With several engine threads, a batch whose layers all treat each example on
    its own is split between the threads, whole model per part (``minicnn.nn.split``).
    On the fast engine a max-pool that follows a ReLU runs before it, which
    gives the same numbers with a ReLU on the smaller map (``minicnn.nn.order``).

    Parameters
    ----------
    layers : list of layers (objects with forward, backward, params, grads)
    """

    def __init__(self, layers):
        layers = list(layers)
        for i, layer in enumerate(layers):
            missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
            if missing:
                raise ValueError(f"Sequential expected layers with forward, backward, params and grads; "
                                 f"layer {i} ({type(layer).__name__}) lacks {', '.join(missing)}")
            both = sorted(set(layer.params) & set(getattr(layer, "buffers", None) or {}))
            if both:
                raise ValueError(f"layer {i} ({type(layer).__name__}) has {both} both as parameters and as buffers")
        self.layers = layers
        self._split = None            # the last forward's split.Split, when it ran split
        self._ran = self.layers       # the order the last forward ran the layers in (nn.order); backward reverses it
        self._part_grads = {}         # the split parts' gradients, kept between steps

    def train(self, mode=True):
        """Put every layer in training mode (``mode=False``: evaluation mode); returns the model."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"mode must be True or False, got {mode!r}")
        for layer in self.layers:
            layer.training = bool(mode)
        return self

    def eval(self):
        """Put every layer in evaluation mode (the same as ``train(False)``); returns the model."""
        return self.train(False)

    @property
    def training(self):
        """True when every layer is in training mode (a layer without a ``training`` flag counts as training)."""
        return all(getattr(layer, "training", True) for layer in self.layers)

    def forward(self, x):
        self._split = None
        self._ran = layers = run_order(self.layers)
        ranges = split.batch_parts(layers, x)
        if ranges is not None:
            team = split.team_for(self, _backward_through)
            parts = split.Split(layers, ranges, self._part_grads) if team is None else \
                split.ProcessSplit(self, layers, ranges, team)
            try:
                out = parts.forward(x)
            except Exception:
                pass                  # run the whole batch below: its error names the batch as it was given
            else:
                self._split = parts
                return out
        return run_forward(layers, x)

    def backward(self, dout, need_input_grad=False):
        """Walk the layers in reverse, filling every layer's ``grads``.

        Training needs only the parameters' gradients, so by default (like
        PyTorch, whose data has ``requires_grad=False``) the first layer skips
        its dx and None is returned.  With ``need_input_grad=True`` the
        gradient of the loss with respect to the model's input is returned
        too (saliency maps and the gradient checker ask for it).  Every
        gradient in ``grads`` is the same either way.

        Shape: dout (N, ...) like the last layer's output -> None, or dx like the input
        """
        if self._split is not None:
            return self._split.backward(dout, _backward_through, need_input_grad)
        return _backward_through(self._ran, dout, need_input_grad)

    def parameters(self):
        """Yield ``(name, param, grad)`` for every parameter, in layer order."""
        for i, layer in enumerate(self.layers):
            for key, param in layer.params.items():
                yield f"{i}.{key}", param, layer.grads[key]

    def buffers(self):
        """Yield ``(name, array)`` for every buffer (a layer's ``buffers`` dict, e.g. running statistics), in layer order."""
        for i, layer in enumerate(self.layers):
            for key, value in (getattr(layer, "buffers", None) or {}).items():
                yield f"{i}.{key}", value

    def num_params(self):
        return sum(p.size for _, p, _ in self.parameters())

    def _arrays(self):
        """Every parameter and buffer, by name."""
        own = {name: param for name, param, _ in self.parameters()}
        own.update(self.buffers())
        return own

    def state_dict(self):
        """Copies of every parameter and buffer as plain NumPy arrays, keyed by name."""
        return {name: np.array(value, copy=True) for name, value in self._arrays().items()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers in place (optimizers keep pointing at them).

        Every parameter and buffer must be present with exactly its shape;
        nothing is changed unless all of them are.
        """
        own = self._arrays()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state_dict does not fit this model: missing {missing}, unexpected {unexpected}")
        for name, param in own.items():
            value = np.asarray(state[name])
            if value.shape != param.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, the model expects {param.shape}")
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
                raise ValueError(f"state_dict[{name!r}] must hold numbers, got dtype {value.dtype}")
        for name, param in own.items():
            np.copyto(param, state[name], casting="unsafe")

    def summary(self, input_shape=None, file=None):
        """Print (and return) a table of each layer's output shape, parameter count and the code that runs it.

        The last column is the implementation (``minicnn.nn.ops``) that runs the
        layer under the current ``use_engine``, with the fallback named where
        the engine lacks the operation; the last line names the engine.

        Parameters
        ----------
        input_shape : tuple, optional
            Shape of one example without the batch axis, e.g. ``(1, 28, 28)``;
            without it the output-shape column is left blank.
        """
        rows = [("Layer", "Output shape", "Params", "Runs on")]
        shape = tuple(input_shape) if input_shape is not None else None
        for i, layer in enumerate(self.layers):
            if shape is not None:
                try:
                    shape = tuple(layer.output_shape(shape))
                except ValueError as err:
                    raise ValueError(f"the shapes do not fit at layer {i} ({type(layer).__name__}), "
                                     f"which receives {shape}: {err}") from None
            count = sum(p.size for p in layer.params.values())
            runs_on = layer.runs_on() if hasattr(layer, "runs_on") else "(its own code)"
            rows.append((f"{i}: {type(layer).__name__}", "(N, " + ", ".join(map(str, shape)) + ")" if shape else "",
                         f"{count:,}", runs_on))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        rule = "-" * (sum(widths) + 6)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
        lines = [fmt(rows[0]), rule] + [fmt(r) for r in rows[1:]] + [
            rule, f"Total params: {self.num_params():,}", f"Engine: {ops.current_engine()}"]
        text = "\n".join(lines)
        print(text, file=file)
        return text
