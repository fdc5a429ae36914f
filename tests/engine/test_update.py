"""The fast optimizer updates (minicnn.engine.update) against the textbook steps of minicnn.nn.optim, to the bit."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Sequential, use_engine
from tests.nn.test_optim import IDS, OPTIMIZERS


def _model(dtype):
    rng = np.random.default_rng(3)
    return Sequential([Conv2D(2, 3, 3, rng=rng, dtype=dtype), Dense(5, 4, rng=rng, dtype=dtype)])


def _steps(engine, cls, kwargs, dtype, grads):
    model = _model(dtype)
    opt = cls(model, **kwargs)
    with use_engine(engine):
        for step in grads:
            for name, _, g in model.parameters():
                g[...] = step[name]
            opt.step()
            opt.lr *= 0.9            # a changing rate, as a schedule would set
    return model.state_dict(), opt.state_dict()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_and_textbook_updates_agree_to_the_bit(cls, kwargs, dtype):
    rng = np.random.default_rng(8)
    shapes = {name: g.shape for name, _, g in _model(dtype).parameters()}
    grads = [{name: rng.standard_normal(shape).astype(dtype) * 10.0 ** rng.integers(-4, 2) for name, shape in shapes.items()}
             for _ in range(6)]
    fast = _steps("fast", cls, kwargs, dtype, grads)
    textbook = _steps("textbook", cls, kwargs, dtype, grads)
    for ours, theirs in zip(fast, textbook):
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key].dtype == theirs[key].dtype
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert not np.array_equal(fast[0]["0.W"], _model(dtype).state_dict()["0.W"])   # the weights did move
