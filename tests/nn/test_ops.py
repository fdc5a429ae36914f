"""minicnn.nn.ops: one table picks each operation's code; use_engine switches it; your own functions plug in."""
import threading

import numpy as np
import pytest

from minicnn import SGD, Conv2D, Dense, Flatten, ReLU, Sequential, current_engine, use_engine
from minicnn.nn import ops, textbook
from minicnn.nn.gradcheck import small_cnn
from minicnn.nn.losses import softmax_cross_entropy


@pytest.fixture
def mine():
    """Register an implementation named "mine" for one test, and remove it afterwards."""
    names = []

    def register(functions, **kwargs):
        names.append("mine")
        return ops.register("mine", functions, **kwargs)

    yield register
    for name in names:
        ops.unregister(name)


def test_fast_is_the_default_and_the_context_restores_it():
    assert current_engine() == "fast"
    with use_engine("textbook") as name:
        assert name == current_engine() == "textbook"
        with use_engine("loops"):
            assert current_engine() == "loops"
        assert current_engine() == "textbook"
    assert current_engine() == "fast"


def test_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"engine must be one of \('textbook', 'loops', 'fast'\), got 'gpu'"):
        with use_engine("gpu"):
            pass


def test_the_choice_belongs_to_the_thread_that_made_it():
    seen = []
    with use_engine("textbook"):
        worker = threading.Thread(target=lambda: seen.append(current_engine()))
        worker.start()
        worker.join()
    assert seen == ["fast"]


def test_the_plan_names_the_fallback_where_an_implementation_lacks_an_op():
    assert set(ops.plan("textbook").values()) == {"textbook"}
    loops = ops.plan("loops")
    assert loops["conv2d"] == loops["maxpool2d"] == loops["batchnorm"] == "loops"
    assert loops["relu"] == loops["dense"] == loops["sgd_update"] == "textbook"
    assert set(ops.plan("fast").values()) == {"fast"}
    assert ops.describe(("conv2d", "relu", "dense"), "loops") == "loops (textbook: relu, dense)"
    with use_engine("loops"):
        text = small_cnn(np.random.default_rng(0)).summary((1, 8, 8), file=None)
    assert "0: Conv2D" in text and "loops\n" in text and "textbook: dense" in text and text.endswith("Engine: loops")


def _train_step(engine, dtype, model=None):
    rng = np.random.default_rng(3)
    model = model or small_cnn(rng, dtype=dtype)
    x, y = rng.standard_normal((6, 1, 8, 8)).astype(dtype), rng.integers(0, 5, size=6)
    with use_engine(engine):
        logits = model.forward(x)
        _, dlogits = softmax_cross_entropy(logits, y)
        dx = model.backward(dlogits, need_input_grad=True)
        SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3).step()
    return logits, dx, {name: (p.copy(), g.copy()) for name, p, g in model.parameters()}


# The implementations sum in different orders (BLAS blocks against NumPy's matmul); the longest sums here have
# 3*3*3 = 27 to 16*6 products of values about 1, so a few eps * sum|terms| is ~1e-5 in float32, ~1e-14 in float64.
@pytest.mark.parametrize("engine", ["fast", "loops"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_every_implementation_gives_the_same_training_step(engine, dtype, tol):
    ours, textbook_step = _train_step(engine, dtype), _train_step("textbook", dtype)
    assert ours[0].dtype == textbook_step[0].dtype == dtype
    np.testing.assert_allclose(ours[0], textbook_step[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(ours[1], textbook_step[1], rtol=tol, atol=tol)
    for name, (param, grad) in ours[2].items():
        np.testing.assert_allclose(grad, textbook_step[2][name][1], rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(param, textbook_step[2][name][0], rtol=tol, atol=tol, err_msg=name)


def test_backward_follows_the_implementation_its_forward_ran_on(monkeypatch):
    rng = np.random.default_rng(4)
    model = small_cnn(rng)
    x, y = rng.standard_normal((2, 1, 8, 8)), rng.integers(0, 5, size=2)
    calls = []
    real = textbook.conv2d_backward
    monkeypatch.setattr(textbook, "conv2d_backward", lambda *a: calls.append("textbook") or real(*a))
    with use_engine("textbook"):
        _, d = softmax_cross_entropy(model.forward(x), y)
    dx_mixed = model.backward(d, need_input_grad=True)            # outside the context: still the textbook backward
    assert calls == ["textbook", "textbook"]
    with use_engine("textbook"):
        model.forward(x)
        dx_textbook = model.backward(d, need_input_grad=True)
    np.testing.assert_array_equal(dx_mixed, dx_textbook)


def test_textbook_engine_runs_the_textbook_lines(monkeypatch):
    """Patch one line of the textbook math: training under use_engine("textbook") changes, under "fast" it does not."""
    def trained(engine):
        model = Sequential([Flatten(), Dense(64, 5, rng=np.random.default_rng(1), dtype=np.float64)])
        return _train_step(engine, np.float64, model)[2]["1.W"][0]

    before = {engine: trained(engine) for engine in ("textbook", "fast")}
    real = textbook.dense_backward
    monkeypatch.setattr(textbook, "dense_backward", lambda dout, cache, need_dx: real(2 * dout, cache, need_dx))
    after = {engine: trained(engine) for engine in ("textbook", "fast")}
    assert not np.allclose(after["textbook"], before["textbook"])      # the patched line ran
    np.testing.assert_array_equal(after["fast"], before["fast"])      # the engine did not read it


def test_a_registered_subset_runs_and_the_rest_falls_back(mine):
    seen = []

    def relu_forward(x):
        seen.append(x.shape)
        return np.maximum(x, 0), x > 0

    def relu_backward(dout, mask):
        return dout * mask

    plan = mine({"relu_forward": relu_forward, "relu_backward": relu_backward, "helper": len})
    assert plan["relu"] == "mine" and plan["conv2d"] == "textbook"
    with use_engine("mine"):
        assert ops.describe(("relu", "conv2d")) == "mine (textbook: conv2d)"
        rng = np.random.default_rng(0)
        _, ours, _ = _train_step("mine", np.float64, small_cnn(rng))
    _, theirs, _ = _train_step("textbook", np.float64, small_cnn(np.random.default_rng(0)))
    assert len(seen) == 3                                       # the three ReLUs of small_cnn
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_registering_is_checked_with_errors_that_teach(mine):
    with pytest.raises(ValueError, match=r"has relu_forward but not relu_backward: a forward and its backward run together"):
        mine({"relu_forward": lambda x: (x, None)})
    with pytest.raises(ValueError, match=r"conv_forward'\] that are no operation; the operations are conv2d_forward"):
        mine({"conv_forward": lambda x: x})
    with pytest.raises(ValueError, match=r"conv2d_forward must take \(x, W, b, stride, padding\), got \(x, W\)"):
        mine({"conv2d_forward": lambda x, W: None, "conv2d_backward": lambda dout, cache, need_dx: None})
    with pytest.raises(ValueError, match=r"sgd_update must take \(param, grad, state, \*, lr, momentum, nesterov"):
        mine({"sgd_update": lambda param, grad, state, lr: None})
    with pytest.raises(ValueError, match=r"'fast' is built in; register your functions under another name"):
        ops.register("fast", {})
    with pytest.raises(ValueError, match=r"fallback must be one of"):
        mine({}, fallback="gpu")
    mine({})
    ops.register("theirs", {}, fallback="mine")
    try:
        with pytest.raises(ValueError, match=r"that does not fall back on 'mine', got 'theirs'"):
            ops.register("mine", {}, fallback="theirs")              # a circle would never end
    finally:
        ops.unregister("theirs")
    with pytest.raises(ValueError, match=r"unknown operation 'conv'"):
        ops.resolve("conv")


def test_two_layers_of_one_shape_keep_their_own_buffers():
    """Two same-shape convs (and ReLUs) in one model: the second forward must not overwrite what the first keeps."""
    rng = np.random.default_rng(5)
    model = Sequential([Conv2D(4, 4, 3, padding=1, rng=rng, dtype=np.float64), ReLU(),
                        Conv2D(4, 4, 3, padding=1, rng=rng, dtype=np.float64), ReLU(),
                        Conv2D(4, 4, 3, padding=1, rng=rng, dtype=np.float64), ReLU(), Flatten(),
                        Dense(4 * 6 * 6, 3, rng=rng, dtype=np.float64)])
    x, y = rng.standard_normal((2, 4, 6, 6)), rng.integers(0, 3, size=2)
    results = {}
    for engine in ("fast", "textbook"):
        with use_engine(engine):
            for _ in range(2):                                  # the second step reuses the first one's buffers
                _, d = softmax_cross_entropy(model.forward(x), y)
                dx = model.backward(d, need_input_grad=True)
        results[engine] = dx, {name: g.copy() for name, _, g in model.parameters()}
    np.testing.assert_allclose(results["fast"][0], results["textbook"][0], rtol=1e-12, atol=1e-12)
    for name, g in results["fast"][1].items():
        np.testing.assert_allclose(g, results["textbook"][1][name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_only_the_fast_engine_splits_a_batch():
    from minicnn.engine import threads
    previous = threads.threads()
    try:
        threads.set_threads(2)
        assert ops.batch_parts(64) == [(0, 32), (32, 64)]
        for name in ("textbook", "loops"):
            with ops.use_engine(name):
                assert ops.batch_parts(64) == [(0, 64)]
    finally:
        threads.set_threads(previous)
