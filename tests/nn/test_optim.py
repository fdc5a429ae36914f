import numpy as np
import pytest

from minicnn import SGD, Dense, Sequential

pytestmark = pytest.mark.usefixtures("engine")   # every test on both engines (tests/nn/conftest.py)


class OneParam:
    """A 'model' with a single parameter whose gradients we set by hand."""

    def __init__(self, value):
        self.p = np.array(value, dtype=np.float64)
        self.g = np.zeros_like(self.p)

    def parameters(self):
        yield "p", self.p, self.g


def _run(opt, model, grads):
    seen = []
    for g in grads:
        model.g[...] = g
        opt.step()
        seen.append(model.p.copy() if model.p.ndim else float(model.p))
    return seen


def test_plain_sgd_by_hand():
    m = OneParam(1.0)
    assert _run(SGD(m, lr=0.1), m, [2.0, -1.0]) == pytest.approx([0.8, 0.9])


def test_momentum_weight_decay_by_hand():
    # lr 0.1, momentum 0.9, weight decay 0.5; p0 = 1
    # step 1: g = 2 + 0.5*1 = 2.5;  v = 2.5;              p = 1 - 0.25 = 0.75
    # step 2: g = 1 + 0.5*0.75 = 1.375; v = 0.9*2.5 + 1.375 = 3.625; p = 0.75 - 0.3625 = 0.3875
    # step 3: g = 0 + 0.5*0.3875 = 0.19375; v = 0.9*3.625 + 0.19375 = 3.45625; p = 0.3875 - 0.345625 = 0.041875
    m = OneParam(1.0)
    opt = SGD(m, lr=0.1, momentum=0.9, weight_decay=0.5)
    assert _run(opt, m, [2.0, 1.0, 0.0]) == pytest.approx([0.75, 0.3875, 0.041875], abs=1e-12)


def test_nesterov_by_hand():
    # lr 0.1, momentum 0.5, nesterov, weight decay 0.1; p0 = 2
    # step 1: g = 1 + 0.2 = 1.2;  v = 1.2;             g' = 1.2 + 0.5*1.2 = 1.8;   p = 2 - 0.18 = 1.82
    # step 2: g = 1 + 0.182 = 1.182; v = 0.6 + 1.182 = 1.782; g' = 1.182 + 0.891 = 2.073; p = 1.82 - 0.2073 = 1.6127
    m = OneParam(2.0)
    opt = SGD(m, lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1)
    assert _run(opt, m, [1.0, 1.0]) == pytest.approx([1.82, 1.6127], abs=1e-12)


def test_sgd_updates_in_place_and_keeps_dtype():
    model = Sequential([Dense(3, 2, rng=np.random.default_rng(0))])
    W = model.layers[0].params["W"]
    before = W.copy()
    model.layers[0].grads["W"] = np.ones_like(W)
    model.layers[0].grads["b"] = np.ones(2, np.float32)
    SGD(model, lr=0.5, momentum=0.9).step()
    assert model.layers[0].params["W"] is W and W.dtype == np.float32
    np.testing.assert_allclose(W, before - 0.5)


def test_state_dict_round_trip():
    m1, m2 = OneParam(1.0), OneParam(1.0)
    o1, o2 = SGD(m1, lr=0.1, momentum=0.9), SGD(m2, lr=0.3, momentum=0.9)
    _run(o1, m1, [1.0, 2.0])
    m2.p[...] = m1.p
    o2.load_state_dict(o1.state_dict())
    assert o2.lr == 0.1 and o2.steps == 2
    assert _run(o1, m1, [0.5, -1.0]) == _run(o2, m2, [0.5, -1.0])
    with pytest.raises(ValueError, match=r"velocity for 'q', which the model does not have"):
        o2.load_state_dict({"lr": 0.1, "steps": 0, "velocity/q": np.zeros(())})


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=0), r"lr must be > 0"), (dict(lr=-1), r"lr must be a finite number >= 0, got -1"),
    (dict(lr=0.1, momentum=-0.1), r"momentum must be a finite number >= 0"),
    (dict(lr=0.1, nesterov=True), r"nesterov=True needs momentum > 0"),
    (dict(lr=float("nan")), r"lr must be a finite number"),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD(OneParam(0.0), **kwargs)


def test_matches_torch_sgd_step_for_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal(5), rng.standard_normal((6, 5))
    for kwargs in (dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=1e-2), dict(weight_decay=0.1)):
        m = OneParam(p0)
        _run(SGD(m, lr=0.05, **kwargs), m, grads)
        ours = m.p.copy()
        tp = torch.tensor(p0, requires_grad=True)
        topt = torch.optim.SGD([tp], lr=0.05, **kwargs)
        for g in grads:
            tp.grad = torch.tensor(g)
            topt.step()
        np.testing.assert_allclose(ours, tp.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.9, "weight_decay": 1e-3},
                                    {"momentum": 0.8, "nesterov": True, "weight_decay": 5e-4}, {"weight_decay": 1e-2}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_matches_the_docstring_formulas_bit_for_bit(kwargs, dtype):
    rng = np.random.default_rng(4)
    model = Sequential([Dense(5, 3, rng=rng, dtype=dtype)])
    params = {name: p.copy() for name, p, _ in model.parameters()}
    velocity = {name: np.zeros_like(p) for name, p in params.items()}
    lr, m, wd = 0.05, kwargs.get("momentum", 0.0), kwargs.get("weight_decay", 0.0)
    opt = SGD(model, lr, **kwargs)
    t = lambda v: np.asarray(v, dtype=dtype)
    for _ in range(4):
        for name, p, g in model.parameters():
            g[...] = rng.standard_normal(g.shape)
        for name, _, grad in model.parameters():
            g, p = grad.copy(), params[name]
            if wd:
                g = g + t(wd) * p
            if m:
                velocity[name] = t(m) * velocity[name] + g
                g = g + t(m) * velocity[name] if kwargs.get("nesterov") else velocity[name]
            params[name] = p - t(lr) * g
        grads_before = {name: g.copy() for name, _, g in model.parameters()}
        opt.step()
        for name, p, g in model.parameters():
            np.testing.assert_array_equal(p, params[name], err_msg=name)
            np.testing.assert_array_equal(g, grads_before[name], err_msg=name)   # gradients are left alone
            assert p.dtype == dtype
