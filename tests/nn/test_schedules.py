"""StepLR and CosineLR against hand-computed rates."""
import math

import pytest

from minicnn import SGD, CosineLR, StepLR
from tests.nn.test_optim import IDS, OPTIMIZERS, OneParam


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


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_schedules_drive_every_optimizer(cls, kwargs):
    opt = cls(OneParam(0.0), **kwargs)
    lr = opt.lr
    sched = StepLR(opt, step_size=2, gamma=0.5)
    assert [sched.step() for _ in range(3)] == [lr, lr / 2, lr / 2] and opt.lr == lr / 2
    opt = cls(OneParam(0.0), **kwargs)
    cos = CosineLR(opt, total_steps=4, min_lr=lr / 10)
    assert [cos.step() for _ in range(2)] == pytest.approx([lr / 10 + 0.9 * lr * (1 + math.cos(math.pi / 4)) / 2,
                                                            lr / 10 + 0.9 * lr / 2])
    with pytest.raises(ValueError, match=rf"min_lr must be <= the optimizer's lr {lr!r}"):
        CosineLR(cls(OneParam(0.0), **kwargs), total_steps=4, min_lr=2 * lr)


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_the_step_uses_the_rate_the_schedule_set(cls, kwargs):
    """Halving lr halves the first step of every optimizer (each one's first update is proportional to lr)."""
    moves = []
    for gamma in (1.0, 0.5):
        model = OneParam(1.0)
        opt = cls(model, **kwargs)
        StepLR(opt, step_size=1, gamma=gamma).step()
        model.g[...] = 0.3
        opt.step()
        moves.append(1.0 - float(model.p))
    assert moves[0] > 0 and moves[1] == pytest.approx(moves[0] / 2, rel=1e-12)   # (AdamW's decay is lr * wd * p)
