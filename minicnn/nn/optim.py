"""SGD with momentum, Nesterov and weight decay (learning-rate schedules are in ``minicnn.nn.schedules``).

The update is the one of ``torch.optim.SGD`` with dampening 0, so the two can be
compared step for step.  For each parameter p with gradient g:

    g = g + weight_decay * p
    v = momentum * v + g            (v starts at 0, so the first v is g)
    g = g + momentum * v  if nesterov else  v
    p = p - lr * g
"""

import numpy as np

from minicnn.engine.update import sgd_update
from minicnn.nn.engines import current_engine
from minicnn.utils.validation import real_number


class SGD:
    """Stochastic gradient descent over a model's parameters.

    Parameters
    ----------
    model : object with ``parameters()`` yielding (name, param, grad), e.g. Sequential
    lr : float > 0
    momentum : float >= 0
    nesterov : bool (needs momentum > 0)
    weight_decay : float >= 0 (L2 penalty added to the gradient)

    The optimizer keeps its own state (the velocity of each parameter, by name);
    the layers hold only parameters and gradients.
    """

    def __init__(self, model, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        lr = real_number(lr, "lr", 0)
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        momentum = real_number(momentum, "momentum", 0)
        weight_decay = real_number(weight_decay, "weight_decay", 0)
        if nesterov and momentum <= 0:
            raise ValueError(f"nesterov=True needs momentum > 0, got momentum={momentum!r}")
        self.model = model
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = {}
        self.steps = 0
        self._buffers = {}

    def step(self):
        """Update every parameter in place from its current gradient (the formulas of the module docstring).

        The fast engine (``minicnn.engine.update.sgd_update``) writes the same
        operations into two reused buffers per parameter, with the same result to the bit.
        """
        lr, m, wd = self.lr, self.momentum, self.weight_decay
        fast = current_engine() == "fast"
        for name, param, grad in self.model.parameters():
            v = self.velocity.get(name)
            if m and v is None:
                v = self.velocity[name] = np.zeros_like(param)
            if fast:
                sgd_update(param, grad, v, self._buffers_for(name, param), lr=lr, momentum=m,
                           nesterov=self.nesterov, weight_decay=wd)
                continue
            g = grad.astype(param.dtype, copy=False)
            if wd:
                g = g + np.asarray(wd, dtype=param.dtype) * param
            if m:
                v *= np.asarray(m, dtype=param.dtype)
                v += g
                g = g + np.asarray(m, dtype=param.dtype) * v if self.nesterov else v
            param -= np.asarray(lr, dtype=param.dtype) * g
        self.steps += 1

    def _buffers_for(self, name, param):
        """Two scratch arrays shaped like ``param`` for the fast update (internal; not part of the optimizer's state)."""
        bufs = self._buffers.get(name)
        if bufs is None or bufs[0].shape != param.shape or bufs[0].dtype != param.dtype:
            bufs = self._buffers[name] = (np.empty_like(param), np.empty_like(param))
        return bufs

    def state_dict(self):
        """Plain arrays: ``lr``, ``steps`` and ``velocity/<name>`` for every velocity buffer."""
        state = {"lr": np.array(self.lr), "steps": np.array(self.steps)}
        state.update({f"velocity/{name}": v.copy() for name, v in self.velocity.items()})
        return state

    def load_state_dict(self, state):
        params = {name: p for name, p, _ in self.model.parameters()}
        velocity = {}
        for key, value in state.items():
            if not key.startswith("velocity/"):
                continue
            name = key[len("velocity/"):]
            if name not in params:
                raise ValueError(f"optimizer state has a velocity for {name!r}, which the model does not have")
            if np.shape(value) != params[name].shape:
                raise ValueError(f"optimizer velocity for {name!r} has shape {np.shape(value)}, "
                                 f"the parameter has {params[name].shape}")
            velocity[name] = np.array(value, dtype=params[name].dtype)
        self.lr = float(state["lr"])
        self.steps = int(state["steps"])
        self.velocity = velocity
