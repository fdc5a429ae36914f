"""SGD with momentum, Nesterov and weight decay, and learning-rate schedules.

The update is the one of ``torch.optim.SGD`` with dampening 0, so the two can be
compared step for step.  For each parameter p with gradient g:

    g = g + weight_decay * p
    v = momentum * v + g            (v starts at 0, so the first v is g)
    g = g + momentum * v  if nesterov else  v
    p = p - lr * g
"""
import math

import numpy as np

from minicnn.validation import integer, real_number


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
        """Update every parameter in place from its current gradient."""
        lr, m, wd = self.lr, self.momentum, self.weight_decay
        for name, param, grad in self.model.parameters():
            # The formulas of the module docstring, written into two reused buffers (no fresh temporaries).
            tmp, acc = self._buffers_for(name, param)
            g = grad.astype(param.dtype, copy=False)
            if wd:
                g = np.add(g, np.multiply(np.asarray(wd, dtype=param.dtype), param, out=tmp), out=acc)
            if m:
                v = self.velocity.get(name)
                if v is None:
                    v = self.velocity[name] = np.zeros_like(param)
                v *= np.asarray(m, dtype=param.dtype)
                v += g
                g = np.add(g, np.multiply(np.asarray(m, dtype=param.dtype), v, out=tmp), out=acc) if self.nesterov else v
            param -= np.multiply(np.asarray(lr, dtype=param.dtype), g, out=tmp)
        self.steps += 1

    def _buffers_for(self, name, param):
        """Two scratch arrays shaped like ``param`` (internal; not part of the optimizer's state)."""
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


class _Schedule:
    """Sets ``optimizer.lr`` from a count of calls to ``step()`` (call it once per optimizer step or per epoch)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.t = 0

    def lr_at(self, t):
        raise NotImplementedError

    def step(self):
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)
        return self.optimizer.lr

    def state_dict(self):
        return {"t": np.array(self.t), "base_lr": np.array(self.base_lr)}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.base_lr = float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.t)


class StepLR(_Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps: ``lr = base_lr * gamma**(t // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        step_size = integer(step_size, "step_size", 1)
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, float(gamma)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineLR(_Schedule):
    """Cosine decay from base_lr to min_lr over ``total_steps``, optionally after a linear warm-up.

    ``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2`` for t <= total_steps, then min_lr.
    With ``warmup_steps`` > 0, the first steps rise linearly from base_lr / warmup_steps to base_lr.
    """

    def __init__(self, optimizer, total_steps, min_lr=0.0, warmup_steps=0):
        total_steps = integer(total_steps, "total_steps", 1)
        warmup_steps = integer(warmup_steps, "warmup_steps", 0)
        if warmup_steps >= total_steps:
            raise ValueError(f"warmup_steps must be an int in [0, total_steps={total_steps}), got {warmup_steps!r}")
        min_lr = real_number(min_lr, "min_lr", 0)
        if min_lr > optimizer.lr:
            raise ValueError(f"min_lr must be <= the optimizer's lr {optimizer.lr!r} (the cosine decays from lr "
                             f"to min_lr), got {min_lr!r}")
        super().__init__(optimizer)
        self.total_steps, self.min_lr, self.warmup_steps = total_steps, min_lr, warmup_steps
        if warmup_steps:
            optimizer.lr = self.lr_at(0)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        span = self.total_steps - self.warmup_steps
        progress = min(1.0, (t - self.warmup_steps) / span)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2
