"""StepLR and CosineLR against hand-computed rates."""
import math

import pytest

from minicnn import SGD, CosineLR, StepLR
from tests.nn.test_optim import OneParam


def test_step_lr_and_cosine_schedules():
    opt = SGD(OneParam(0.0), lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    assert [sched.step() for _ in range(5)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt = SGD(OneParam(0.0), lr=1.0)
    cos = CosineLR(opt, total_steps=4, min_lr=0.1)
    lrs = [cos.step() for _ in range(5)]
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in (1, 2, 3, 4)] + [0.1]
    assert lrs == pytest.approx(expected)
    opt = SGD(OneParam(0.0), lr=1.0)
    warm = CosineLR(opt, total_steps=6, warmup_steps=2)
    assert opt.lr == 0.5 and warm.step() == 1.0 and warm.step() == 1.0 and warm.step() < 1.0
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        StepLR(opt, step_size=0)
