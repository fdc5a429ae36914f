"""Learning-rate schedules: set ``optimizer.lr`` from a count of steps; they work with any optimizer that has ``lr``."""
import math

import numpy as np

from minicnn.utils.validation import integer, real_number


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
