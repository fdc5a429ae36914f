import math

import numpy as np
import pytest

from minicnn import SGD, Dense, Sequential
from minicnn.nn.optim import Adam, AdamW, RMSprop

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


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


# ---------------------------------------------------------------- Adam, AdamW, RMSprop

OPTIMIZERS = [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, dict(lr=0.01, betas=(0.5, 0.6), amsgrad=True)),
    (RMSprop, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=0.1)),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(OPTIMIZERS)]


def test_adam_by_hand():
    # lr 0.1, betas (0.5, 0.75), eps 0.5; p0 = 1; gradients 2, 3, -1.
    # step 1: m = 0.5*0 + 0.5*2 = 1;  v = 0.75*0 + 0.25*4 = 1
    #         denom = sqrt(1) / sqrt(1 - 0.75) + 0.5 = 2.5;  p = 1 - 0.1 / (1 - 0.5) * 1 / 2.5 = 0.92
    #         (eps inside the bias correction, (sqrt(v) + eps) / sqrt(1 - 0.75) = 3, would give 0.9333...)
    lr, b1, b2, eps = 0.1, 0.5, 0.75, 0.5
    p, m, v, expected = 1.0, 0.0, 0.0, []
    for t, g in enumerate([2.0, 3.0, -1.0], 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
        expected.append(p)
    assert expected[0] == pytest.approx(0.92, abs=1e-15)
    model = OneParam(1.0)
    assert _run(Adam(model, lr=lr, betas=(b1, b2), eps=eps), model, [2.0, 3.0, -1.0]) == pytest.approx(expected, abs=1e-14)


def test_adam_amsgrad_keeps_the_largest_second_moment():
    # lr 0.1, betas (0.5, 0.75), eps 0; p0 = 1; gradients 2, 0, 1: v goes 1, 0.75, 0.8125, but v_max stays 1.
    # step 1: m = 1, v = v_max = 1;  p = 1 - 0.2 * 1 / (1 / 0.5) = 0.9
    # step 2: m = 0.5, v = 0.75, v_max = 1;  p = 0.9 - 0.1/0.75 * 0.5 / (1 / sqrt(0.4375))
    lr, b1, b2 = 0.1, 0.5, 0.75
    p, m, v, v_max, expected = 1.0, 0.0, 0.0, 0.0, []
    for t, g in enumerate([2.0, 0.0, 1.0], 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = max(v_max, v)
        p = p - lr / (1 - b1 ** t) * m / (math.sqrt(v_max) / math.sqrt(1 - b2 ** t))
        expected.append(p)
    assert expected[0] == pytest.approx(0.9, abs=1e-15)
    model = OneParam(1.0)
    opt = Adam(model, lr=lr, betas=(b1, b2), eps=0.0, amsgrad=True)
    assert _run(opt, model, [2.0, 0.0, 1.0]) == pytest.approx(expected, abs=1e-14)
    assert float(opt.state["max_exp_avg_sq"]["p"]) == 1.0 and float(opt.state["exp_avg_sq"]["p"]) == 0.8125
    model = OneParam(1.0)
    assert _run(Adam(model, lr=lr, betas=(b1, b2), eps=0.0), model, [2.0, 0.0, 1.0])[2] != pytest.approx(expected[2])


def test_adam_weight_decay_is_added_to_the_gradient_and_adamw_decays_the_weights():
    # lr 0.1, betas (0.5, 0.75), eps 0.5, weight decay 0.5; p0 = 1; gradients 2, 3.
    # Adam  step 1: g = 2 + 0.5*1 = 2.5; m = 1.25; v = 1.5625; p = 1 - 0.2 * 1.25 / (1.25/0.5 + 0.5) = 0.91666...
    # AdamW step 1: p = 1 * (1 - 0.1*0.5) = 0.95, then the Adam step of g = 2: p = 0.95 - 0.08 = 0.87
    lr, b1, b2, eps, wd = 0.1, 0.5, 0.75, 0.5, 0.5

    def by_hand(decoupled):
        p, m, v, out = 1.0, 0.0, 0.0, []
        for t, g in enumerate([2.0, 3.0], 1):
            if decoupled:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr / (1 - b1 ** t) * m / (math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
            out.append(p)
        return out

    adam, adamw = by_hand(False), by_hand(True)
    assert adam[0] == pytest.approx(1 - 0.2 * 1.25 / 3, abs=1e-15) and adamw[0] == pytest.approx(0.87, abs=1e-15)
    model = OneParam(1.0)
    assert _run(Adam(model, lr, (b1, b2), eps, weight_decay=wd), model, [2.0, 3.0]) == pytest.approx(adam, abs=1e-14)
    model = OneParam(1.0)
    assert _run(AdamW(model, lr, (b1, b2), eps, weight_decay=wd), model, [2.0, 3.0]) == pytest.approx(adamw, abs=1e-14)
    assert AdamW(OneParam(0.0)).weight_decay == 1e-2 and Adam(OneParam(0.0)).weight_decay == 0.0


def test_rmsprop_by_hand():
    # lr 0.1, alpha 0.75, eps 0.5; p0 = 1; gradients 2, 3.
    # step 1: s = 0.25*4 = 1; avg = sqrt(1) + 0.5 = 1.5; p = 1 - 0.1 * 2 / 1.5 = 0.8666...
    # step 2: s = 0.75 + 0.25*9 = 3; avg = sqrt(3) + 0.5; p = 0.8666... - 0.3 / (sqrt(3) + 0.5)
    # with momentum 0.5 and weight decay 0.1: g = g + 0.1 p; b = 0.5 b + g / avg; p = p - 0.1 b
    lr, alpha, eps = 0.1, 0.75, 0.5
    assert _run(RMSprop(m := OneParam(1.0), lr, alpha, eps), m, [2.0, 3.0]) == pytest.approx(
        [1 - 0.2 / 1.5, 1 - 0.2 / 1.5 - 0.3 / (math.sqrt(3) + 0.5)], abs=1e-14)
    mom, wd = 0.5, 0.1
    p, s, b, expected = 1.0, 0.0, 0.0, []
    for g in [2.0, 3.0, -1.0]:
        g = g + wd * p
        s = alpha * s + (1 - alpha) * g * g
        b = mom * b + g / (math.sqrt(s) + eps)
        p = p - lr * b
        expected.append(p)
    assert expected[0] == pytest.approx(1 - 0.1 * 2.1 / (math.sqrt(0.25 * 2.1 ** 2) + 0.5), abs=1e-15)
    model = OneParam(1.0)
    opt = RMSprop(model, lr, alpha, eps, momentum=mom, weight_decay=wd)
    assert _run(opt, model, [2.0, 3.0, -1.0]) == pytest.approx(expected, abs=1e-14)


def _dense(seed=0, dtype=np.float32):
    return Sequential([Dense(4, 3, rng=np.random.default_rng(seed), dtype=dtype)])


def _train(model, opt, grads):
    """Set every parameter's gradient from ``grads`` (a list of dicts) and step once per entry."""
    for step in grads:
        for name, _, g in model.parameters():
            g[...] = step[name]
        opt.step()


def _gradients(model, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(g.shape).astype(g.dtype) for name, _, g in model.parameters()}
            for _ in range(steps)]


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_resume_from_state_dict_is_bit_identical(cls, kwargs):
    a, b = _dense(), _dense()
    grads = _gradients(a, 6)
    opt_a = cls(a, **kwargs)
    _train(a, opt_a, grads)
    opt_b = cls(b, **kwargs)
    _train(b, opt_b, grads[:3])
    state = {k: v.copy() for k, v in opt_b.state_dict().items()}
    weights = b.state_dict()
    c = _dense(seed=5)                                  # a fresh model and optimizer continue from the saved point
    c.load_state_dict(weights)
    opt_c = cls(c, **{**kwargs, "lr": 0.123})
    opt_c.load_state_dict(state)
    assert opt_c.lr == kwargs["lr"] and opt_c.steps == 3 and str(state["type"]) == cls.__name__
    _train(c, opt_c, grads[3:])
    for (name, p, _), (_, q, _) in zip(a.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_and_state_keep_their_dtype_and_identity(cls, kwargs, dtype):
    model = _dense(dtype=dtype)
    arrays = [p for _, p, _ in model.parameters()]
    opt = cls(model, **kwargs)
    _train(model, opt, _gradients(model, 2))
    assert all(p is q for p, (_, q, _) in zip(arrays, model.parameters()))
    assert all(p.dtype == dtype for p in arrays)
    state = opt.state_dict()
    assert all(v.dtype == dtype for k, v in state.items() if "/" in k) and len(state) > 3
    assert all(a.dtype == dtype for slot in opt.state.values() for a in slot.values())


@pytest.mark.parametrize("make,message", [
    (lambda m: Adam(m, lr=-1), r"lr must be a finite number >= 0, got -1"),
    (lambda m: Adam(m, lr=0), r"lr must be > 0, got 0"),
    (lambda m: Adam(m, lr="0.1"), r"lr must be a finite number, got '0.1'"),
    (lambda m: Adam(m, betas=(1.0, 0.999)), r"betas\[0\] must be a finite number in \[0, 1\), got 1.0"),
    (lambda m: Adam(m, betas=(0.9, -0.1)), r"betas\[1\] must be a finite number >= 0, got -0.1"),
    (lambda m: Adam(m, betas=0.9), r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda m: Adam(m, eps=-1e-8), r"eps must be a finite number >= 0, got -1e-08"),
    (lambda m: Adam(m, weight_decay=float("nan")), r"weight_decay must be a finite number, got nan"),
    (lambda m: Adam(m, amsgrad="yes"), r"amsgrad must be True or False, got 'yes'"),
    (lambda m: AdamW(m, weight_decay=-0.01), r"weight_decay must be a finite number >= 0, got -0.01"),
    (lambda m: AdamW(m, betas=(0.9, 1.5)), r"betas\[1\] must be a finite number in \[0, 1\), got 1.5"),
    (lambda m: RMSprop(m, alpha=1.0), r"alpha must be a finite number in \[0, 1\), got 1.0"),
    (lambda m: RMSprop(m, alpha=-0.5), r"alpha must be a finite number >= 0, got -0.5"),
    (lambda m: RMSprop(m, momentum=-0.9), r"momentum must be a finite number >= 0, got -0.9"),
    (lambda m: RMSprop(m, eps=None), r"eps must be a finite number, got None"),
    (lambda m: RMSprop(m, lr=True), r"lr must be a finite number, got True"),
])
def test_new_optimizers_reject_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(OneParam(0.0))


def test_load_state_dict_refuses_a_state_that_does_not_fit():
    model = _dense()
    adam = Adam(model)
    _train(model, adam, _gradients(model, 2))
    state = adam.state_dict()
    with pytest.raises(ValueError, match=r"optimizer state is from Adam, this optimizer is AdamW"):
        AdamW(model).load_state_dict(state)
    with pytest.raises(ValueError, match=r"optimizer state is from SGD, this optimizer is Adam"):
        Adam(model).load_state_dict({"lr": np.array(0.1), "steps": np.array(0)})   # a minicnn 0.1 SGD state
    with pytest.raises(ValueError, match=r"optimizer state has no max_exp_avg_sq for \['0.W', '0.b'\]"):
        Adam(model, amsgrad=True).load_state_dict(state)
    amsgrad = Adam(model, amsgrad=True)
    _train(model, amsgrad, _gradients(model, 1))
    with pytest.raises(ValueError, match=r"entry 'max_exp_avg_sq/0.W', which Adam without amsgrad does not keep"):
        Adam(model).load_state_dict(amsgrad.state_dict())
    with pytest.raises(ValueError, match=r"no exp_avg_sq for \['0.b'\]"):
        Adam(model).load_state_dict({k: v for k, v in state.items() if k != "exp_avg_sq/0.b"})
    with pytest.raises(ValueError, match=r"exp_avg for '0.W' has shape \(3, 4\), the parameter has \(4, 3\)"):
        Adam(model).load_state_dict({**state, "exp_avg/0.W": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"entry 'exp_avg/0.W', which RMSprop without momentum does not keep "
                                         r"\(it keeps square_avg\)"):
        RMSprop(model).load_state_dict({**state, "type": np.array("RMSprop")})
    with pytest.raises(ValueError, match=r"velocity/0.W', which SGD without momentum does not keep"):
        SGD(model, lr=0.1).load_state_dict({"lr": np.array(0.1), "steps": np.array(1), "velocity/0.W": np.zeros((4, 3))})
    fresh = Adam(model)
    before = {k: v.copy() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError):
        fresh.load_state_dict({**state, "exp_avg/0.b": np.zeros(7)})
    assert fresh.steps == 0 and fresh.state_dict().keys() == before.keys()   # nothing changed


OPTIMIZERS_TORCH = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.05, betas=(0.7, 0.8), weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4, momentum=0.9, weight_decay=0.05)),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS_TORCH, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS_TORCH)])
def test_matches_torch_optimizers_step_for_step(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal(5), rng.standard_normal((8, 5))
    grads[3] = grads[2] / 10    # a smaller gradient after a larger one: amsgrad's max matters
    m = OneParam(p0)
    ours = _run({"Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}[name](m, **kwargs), m, grads)
    tp = torch.tensor(p0, requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kwargs)
    for step, g in enumerate(grads):
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(ours[step], tp.detach().numpy(), rtol=1e-9, atol=1e-9, err_msg=f"step {step + 1}")
