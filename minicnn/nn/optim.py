"""Optimizers: SGD, Adam, AdamW and RMSprop, each with the update rule of the PyTorch class of the same name.

Learning-rate schedules are in ``minicnn.nn.schedules``; they set ``optimizer.lr``.
Every optimizer reads only ``model.parameters()`` (``(name, param, grad)``
triples) and keeps its own state, arrays shaped like the parameters, by name.
For each parameter p with gradient g, at step t = 1, 2, ...:

SGD (``torch.optim.SGD`` with dampening 0)::

    g = g + weight_decay * p
    v = momentum * v + g            (v starts at 0, so the first v is g)
    g = g + momentum * v  if nesterov else  v
    p = p - lr * g

Adam (``torch.optim.Adam``; m, v start at 0)::

    g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)           (amsgrad only; then v_max replaces v below)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps
    p = p - lr / (1 - beta1**t) * m / denom

AdamW (``torch.optim.AdamW``): Adam with the decay taken out of the gradient
and applied to the weights first, ``p = p * (1 - lr * weight_decay)``.

RMSprop (``torch.optim.RMSprop``, not centred; s, b start at 0)::

    g = g + weight_decay * p
    s = alpha * s + (1 - alpha) * g * g
    avg = sqrt(s) + eps
    b = momentum * b + g / avg;  p = p - lr * b     with momentum
    p = p - lr * g / avg                            without

PyTorch counts t per parameter; here every parameter steps every time, so one
count (``steps``) is the same thing.  Each rule is one operation of
``minicnn.nn.ops`` (``sgd_update``, ``adam_update``, ``rmsprop_update``), taking
(param, grad, state) and changing them in place: its math in
``minicnn.nn.textbook``, the same operations into two pooled buffers per
parameter (the same result to the bit) in ``minicnn.engine.update``.
"""
import numpy as np

from minicnn.nn import ops
from minicnn.utils.validation import integer, real_number


def _learning_rate(lr):
    lr = real_number(lr, "lr", 0)
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    return lr


def _fraction(value, name):
    """A number in [0, 1), such as a decay rate (at 1 the average would never move)."""
    value = real_number(value, name, 0)
    if value >= 1:
        raise ValueError(f"{name} must be a finite number in [0, 1), got {value!r}")
    return value


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class _Optimizer:
    """What every optimizer shares: ``lr``, ``steps``, per-parameter state arrays, ``state_dict``.

    ``state[slot][name]`` is the array ``slot`` (e.g. ``"exp_avg"``) of the
    parameter ``name``; a subclass lists its slots in ``slots`` and writes ``step``.
    """

    slots = ()

    def __init__(self, model, lr):
        self.model = model
        self.lr = _learning_rate(lr)
        self.steps = 0
        self.state = {slot: {} for slot in self.slots}

    def _state_for(self, name, param):
        """{slot: array} of this parameter, the arrays created as zeros on its first step."""
        state = {}
        for slot in self.slots:
            a = self.state[slot].get(name)
            if a is None:
                a = self.state[slot][name] = np.zeros_like(param)
            state[slot] = a
        return state

    def step(self):
        """Update every parameter in place from its current gradient (``update`` with ``hyperparameters()``)."""
        hyper = self.hyperparameters()
        for name, param, grad in self.model.parameters():
            self.update(param, grad, self._state_for(name, param), **hyper)
        self.steps += 1

    def runs_on(self):
        """Which implementation runs this optimizer's update now (``ops.describe``)."""
        return ops.describe((self.update.__name__,))

    def state_dict(self):
        """Plain arrays: ``type`` (the class name), ``lr``, ``steps`` and ``<slot>/<param name>`` for every state array."""
        state = {"type": np.array(type(self).__name__), "lr": np.array(self.lr), "steps": np.array(self.steps)}
        for slot in self.slots:
            state.update({f"{slot}/{name}": a.copy() for name, a in self.state[slot].items()})
        return state

    def load_state_dict(self, state):
        """Take the state ``state_dict`` gave (of an optimizer of the same class and options over the same model).

        Every parameter must have every one of this optimizer's state arrays,
        with its shape, or (a state saved before the first step) none at all;
        nothing is changed unless the whole state fits.  A state without
        ``type`` (checkpoints of minicnn 0.1) is an SGD state.
        """
        kind = str(state.get("type", "SGD"))
        if kind != type(self).__name__:
            raise ValueError(f"optimizer state is from {kind}, this optimizer is {type(self).__name__}")
        missing = [k for k in ("lr", "steps") if k not in state]
        if missing:
            raise ValueError(f"optimizer state lacks {missing}")
        lr = real_number(np.asarray(state["lr"]).item(), "optimizer state lr", 0)
        steps = integer(np.asarray(state["steps"]).item(), "optimizer state steps", 0)
        params = {name: p for name, p, _ in self.model.parameters()}
        loaded = {slot: {} for slot in self.slots}
        for key, value in state.items():
            if key in ("type", "lr", "steps"):
                continue
            slot, _, name = key.partition("/")
            if slot not in loaded:
                raise ValueError(f"optimizer state has an entry {key!r}, which {self._describe()} does not keep "
                                 f"(it keeps {', '.join(self.slots) or 'nothing per parameter'})")
            if name not in params:
                raise ValueError(f"optimizer state has a {slot} for {name!r}, which the model does not have")
            if np.shape(value) != params[name].shape:
                raise ValueError(f"optimizer {slot} for {name!r} has shape {np.shape(value)}, "
                                 f"the parameter has {params[name].shape}")
            loaded[slot][name] = np.array(value, dtype=params[name].dtype)
        if any(loaded.values()):
            for slot, arrays in loaded.items():
                lacking = [name for name in params if name not in arrays]
                if lacking:
                    raise ValueError(f"optimizer state has no {slot} for {lacking} (a state holds every "
                                     f"parameter's, or none before the first step)")
        self.lr, self.steps, self.state = lr, steps, loaded

    def _describe(self):
        return type(self).__name__


class SGD(_Optimizer):
    """Stochastic gradient descent over a model's parameters (the formulas of the module docstring).

    Parameters
    ----------
    model : object with ``parameters()`` yielding (name, param, grad), e.g. Sequential
    lr : float > 0
    momentum : float >= 0
    nesterov : bool (needs momentum > 0)
    weight_decay : float >= 0 (L2 penalty added to the gradient)

    State: ``velocity[name]`` for each parameter, with momentum only.
    """

    def __init__(self, model, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        lr = _learning_rate(lr)
        momentum = real_number(momentum, "momentum", 0)
        weight_decay = real_number(weight_decay, "weight_decay", 0)
        if nesterov and momentum <= 0:
            raise ValueError(f"nesterov=True needs momentum > 0, got momentum={momentum!r}")
        self.slots = ("velocity",) if momentum else ()
        super().__init__(model, lr)
        self.momentum, self.nesterov, self.weight_decay = momentum, bool(nesterov), weight_decay

    @property
    def velocity(self):
        """The velocity of each parameter, by name (empty without momentum)."""
        return self.state.get("velocity", {})

    update = staticmethod(ops.sgd_update)

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _describe(self):
        return "SGD without momentum" if not self.momentum else "SGD"


class Adam(_Optimizer):
    """Adam: steps scaled by running averages of the gradient and of its square (the module docstring).

    Parameters
    ----------
    model : object with ``parameters()`` yielding (name, param, grad), e.g. Sequential
    lr : float > 0
    betas : (beta1, beta2), each in [0, 1): decay of the averages of g and of g * g
    eps : float >= 0, added to the denominator
    weight_decay : float >= 0 (L2 penalty added to the gradient; AdamW decouples it)
    amsgrad : bool, divide by the largest v seen so far instead of the current one

    State: ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.
    """

    decoupled = False

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        lr = _learning_rate(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_fraction(betas[0], "betas[0]"), _fraction(betas[1], "betas[1]"))
        self.eps = real_number(eps, "eps", 0)
        self.weight_decay = real_number(weight_decay, "weight_decay", 0)
        self.amsgrad = _flag(amsgrad, "amsgrad")
        self.slots = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(model, lr)

    update = staticmethod(ops.adam_update)

    def hyperparameters(self):
        beta1, beta2 = self.betas
        return {"lr": self.lr, "beta1": beta1, "beta2": beta2, "eps": self.eps, "weight_decay": self.weight_decay,
                "decoupled": self.decoupled, "step": self.steps + 1}

    def _describe(self):
        return f"{type(self).__name__}{' without amsgrad' if not self.amsgrad else ''}"


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p = p * (1 - lr * weight_decay)`` before each Adam step.

    Parameters as for ``Adam``; ``weight_decay`` defaults to 1e-2 (as in PyTorch).
    """

    decoupled = True

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(model, lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class RMSprop(_Optimizer):
    """RMSprop: steps divided by the root of a running average of g * g (not centred; the module docstring).

    Parameters
    ----------
    model : object with ``parameters()`` yielding (name, param, grad), e.g. Sequential
    lr : float > 0
    alpha : float in [0, 1), decay of the average of g * g
    eps : float >= 0, added to the denominator
    momentum : float >= 0
    weight_decay : float >= 0 (L2 penalty added to the gradient)

    State: ``square_avg`` (s) and, with momentum, ``momentum_buffer`` (b).
    """

    def __init__(self, model, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        lr = _learning_rate(lr)
        self.alpha = _fraction(alpha, "alpha")
        self.eps = real_number(eps, "eps", 0)
        self.momentum = real_number(momentum, "momentum", 0)
        self.weight_decay = real_number(weight_decay, "weight_decay", 0)
        self.slots = ("square_avg",) + (("momentum_buffer",) if self.momentum else ())
        super().__init__(model, lr)

    update = staticmethod(ops.rmsprop_update)

    def hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay}

    def _describe(self):
        return "RMSprop without momentum" if not self.momentum else "RMSprop"
