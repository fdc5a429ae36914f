"""The order Sequential runs its layers in (minicnn.nn.order): a max-pool before the ReLU it follows, same numbers."""
import numpy as np
import pytest

from minicnn import AvgPool2D, BatchNorm2D, Conv2D, Dense, Flatten, LeakyReLU, MaxPool2D, ReLU, Sequential
from minicnn.nn import ops, textbook
from minicnn.nn.gradcheck import MODEL_TOL, check_model, small_cnn
from minicnn.nn.losses import softmax_cross_entropy
from minicnn.nn.order import run_order


class MyReLU(ReLU, register=False):
    pass


def _names(layers):
    return [type(layer).__name__ for layer in layers]


def test_on_the_fast_engine_each_relu_followed_by_a_max_pool_runs_after_it():
    relu, pool, relu2, pool2, pool3 = ReLU(), MaxPool2D(2), ReLU(), MaxPool2D(2), MaxPool2D(1)
    layers = [Conv2D(1, 2, 3), relu, pool, relu2, pool2, pool3, Flatten()]
    order = run_order(layers)
    assert order[1:6] == [pool, relu, pool2, relu2, pool3]      # each ReLU moves past one pool, no further
    assert _names(layers) == ["Conv2D", "ReLU", "MaxPool2D", "ReLU", "MaxPool2D", "MaxPool2D", "Flatten"]   # untouched
    assert _names(run_order([ReLU(), ReLU(), MaxPool2D(2)])) == ["ReLU", "MaxPool2D", "ReLU"]


@pytest.mark.parametrize("layers", [
    [LeakyReLU(0.1), MaxPool2D(2)],          # another activation
    [ReLU(), AvgPool2D(2)],                  # another pool: the mean of ReLUs is not the ReLU of the mean
    [MyReLU(), MaxPool2D(2)],                # a subclass may change what ReLU means
    [MaxPool2D(2), ReLU()],                  # already in the cheap order
    [ReLU(), Flatten(), MaxPool2D(2)],
], ids=["leaky", "avgpool", "subclass", "pool-first", "not-adjacent"])
def test_only_minicnns_relu_right_before_its_max_pool_moves(layers):
    assert run_order(layers) == layers


@pytest.mark.parametrize("engine", ["textbook", "loops"])
def test_off_the_fast_engine_the_layers_run_as_written(engine):
    layers = [ReLU(), MaxPool2D(2)]
    with ops.use_engine(engine):
        assert run_order(layers) == layers


def test_with_your_own_relu_registered_the_layers_run_as_written():
    ops.register("test_order_relu", {"relu_forward": textbook.relu_forward, "relu_backward": textbook.relu_backward},
                 fallback="fast")
    try:
        layers = [ReLU(), MaxPool2D(2)]
        with ops.use_engine("test_order_relu"):
            assert ops.resolve("relu") == "test_order_relu" and ops.resolve("maxpool2d") == "fast"
            assert run_order(layers) == layers
    finally:
        ops.unregister("test_order_relu")


def _as_written(layers, x, y):
    """Logits, dx and every gradient, each layer called in the order written (no reordering)."""
    h = x
    for layer in layers:
        h = layer.forward(h)
    logits, d = h, softmax_cross_entropy(h, y)[1]
    for layer in reversed(layers):
        d = layer.backward(d)
    return logits, d, {f"{i}.{k}": layer.grads[k].copy() for i, layer in enumerate(layers) for k in layer.params}


def _through_model(model, x, y):
    logits = model.forward(x)
    dx = model.backward(softmax_cross_entropy(logits, y)[1], need_input_grad=True)
    return logits, dx, {name: g.copy() for name, _, g in model.parameters()}


def _assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2].keys() == want[2].keys()
    for name in got[2]:
        np.testing.assert_array_equal(got[2][name], want[2][name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_swapped_pair_gives_the_numbers_of_the_written_order_with_ties_and_windows_below_zero(dtype):
    # Small integers: many windows tie, many are all negative or all zero, some tie at a positive maximum.
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(12, 2, 6, 6)).astype(dtype)
    y = rng.integers(0, 3, size=12)
    model = Sequential([ReLU(), MaxPool2D(2), Flatten(), Dense(18, 3, rng=rng, dtype=dtype)])
    got = _through_model(model, x, y)
    assert _names(model._ran) == ["MaxPool2D", "ReLU", "Flatten", "Dense"]
    assert model.layers[0]._cache.saved.shape == (12, 2, 3, 3)          # the ReLU ran on the pooled map
    _assert_same(got, _as_written(model.layers, x, y))                 # the same layers called as written


@pytest.mark.parametrize("threads", [1, 2])
def test_a_cnn_gives_the_numbers_of_the_written_order(threads, monkeypatch):
    from minicnn.engine import threads as engine_threads
    monkeypatch.setattr(engine_threads, "MIN_EXAMPLES", 2)
    previous = engine_threads.threads()
    engine_threads.set_threads(threads)
    try:
        rng = np.random.default_rng(8)
        model = small_cnn(rng, dtype=np.float64, channels=2, classes=4)
        x, y = rng.standard_normal((10, 2, 8, 8)), rng.integers(0, 4, size=10)
        got = _through_model(model, x, y)
        assert (model._split is not None) == (threads == 2)
    finally:
        engine_threads.set_threads(previous)
    assert _names(model._ran)[:6] == ["Conv2D", "MaxPool2D", "ReLU", "Conv2D", "MaxPool2D", "ReLU"]
    want = _as_written(model.layers, x, y)
    if threads == 1:
        _assert_same(got, want)
        return
    # Two parts of 5 examples: OpenBLAS gives each row of a product the same sum at any number of rows, oneMKL
    # may not (the mkl extra); and each gradient is the sum of the parts', one more rounding.
    for a, b in zip(got[:2], want[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for name in got[2]:
        np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_backward_walks_the_order_its_forward_ran_even_after_the_engine_changed():
    rng = np.random.default_rng(1)
    model = Sequential([ReLU(), MaxPool2D(2), Flatten(), Dense(8, 3, rng=rng)])
    x, y = rng.standard_normal((4, 2, 4, 4)), rng.integers(0, 3, size=4)
    logits = model.forward(x)                                  # fast: the pool ran first
    with ops.use_engine("textbook"):
        dx = model.backward(softmax_cross_entropy(logits, y)[1], need_input_grad=True)
    with ops.use_engine("textbook"):
        want = _as_written(model.layers, x, y)
    np.testing.assert_allclose(dx, want[1], rtol=1e-12, atol=1e-15)


def test_a_reordered_model_passes_the_gradient_check():
    rng = np.random.default_rng(2)
    model = small_cnn(rng, dtype=np.float64, channels=1, classes=3)
    x, y = rng.standard_normal((3, 1, 8, 8)), rng.integers(0, 3, size=3)
    errors = check_model(model, x, y)
    assert _names(model._ran)[1:3] == ["MaxPool2D", "ReLU"]
    assert max(errors.values()) < MODEL_TOL, errors


# -- a batch norm and the max-pool after it, as one operation ---------------------------------------------


def _bn_cnn(rng, dtype=np.float64):
    return Sequential([Conv2D(2, 3, 3, padding=1, bias=False, rng=rng, dtype=dtype), BatchNorm2D(3, dtype=dtype), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(3 * 4 * 4, 4, rng=rng, dtype=dtype)])


def _count_pair_calls(monkeypatch):
    calls = []
    for name in ("batchnorm_maxpool2d_forward", "batchnorm_maxpool2d_backward"):
        def spy(*args, run=getattr(ops, name), name=name):
            calls.append(name)
            return run(*args)
        monkeypatch.setattr(ops, name, spy)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_batch_norm_and_its_max_pool_run_as_one_operation_with_the_numbers_of_the_two(dtype, monkeypatch):
    rng = np.random.default_rng(4)
    model = _bn_cnn(rng, dtype)
    x, y = rng.standard_normal((6, 2, 8, 8)).astype(dtype), rng.integers(0, 4, size=6)
    calls = _count_pair_calls(monkeypatch)
    got = _through_model(model, x, y)
    assert calls == ["batchnorm_maxpool2d_forward", "batchnorm_maxpool2d_backward"]
    assert _names(model._ran)[:4] == ["Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU"]
    again = _bn_cnn(np.random.default_rng(4), dtype)
    _assert_same(got, _as_written(run_order(again.layers), x, y))     # each layer's forward and backward alone
    for k in ("running_mean", "running_var"):
        np.testing.assert_array_equal(model.layers[1].buffers[k], again.layers[1].buffers[k])


def test_each_layer_of_the_pair_keeps_a_cache_its_own_backward_takes():
    rng = np.random.default_rng(5)
    model = _bn_cnn(rng)
    x = rng.standard_normal((4, 2, 8, 8))
    out = model.forward(x)
    bn, pool = model.layers[1], model.layers[3]
    dout = rng.standard_normal(pool._cache.saved.winner.shape)
    apart = bn.backward(pool.backward(dout))
    together = bn.backward_pooled(pool, dout)
    np.testing.assert_array_equal(apart, together)
    assert out.shape == (4, 4)


@pytest.mark.parametrize("engine", ["textbook", "loops"])
def test_off_the_fast_engine_the_batch_norm_and_its_pool_run_apart(engine, monkeypatch):
    rng = np.random.default_rng(6)
    model = _bn_cnn(rng)
    x, y = rng.standard_normal((4, 2, 8, 8)), rng.integers(0, 4, size=4)
    calls = _count_pair_calls(monkeypatch)
    with ops.use_engine(engine):
        _through_model(model, x, y)
    assert calls == []


class MyBatchNorm(BatchNorm2D, register=False):
    pass


@pytest.mark.parametrize("layers,paired", [
    (lambda: [BatchNorm2D(2), ReLU(), MaxPool2D(2)], True),      # the ReLU moves after the pool: then adjacent
    (lambda: [MyBatchNorm(2), MaxPool2D(2)], False),             # a subclass may change what the batch norm means
    (lambda: [BatchNorm2D(2), AvgPool2D(2)], False),             # another pool
    (lambda: [BatchNorm2D(2), Flatten()], False),
], ids=["relu-between", "subclass", "avgpool", "no-pool"])
def test_only_minicnns_batch_norm_right_before_its_max_pool_runs_with_it(layers, paired, monkeypatch):
    rng = np.random.default_rng(7)
    model = Sequential(layers())
    calls = _count_pair_calls(monkeypatch)
    model.forward(rng.standard_normal((4, 2, 4, 4)))
    assert calls == (["batchnorm_maxpool2d_forward"] if paired else [])


def test_the_pair_in_a_split_batch_gives_the_numbers_of_the_two_apart(monkeypatch):
    from minicnn.engine import threads as engine_threads
    from minicnn.nn import order
    monkeypatch.setattr(engine_threads, "MIN_EXAMPLES", 2)
    previous = engine_threads.threads()
    engine_threads.set_threads(2)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((10, 2, 8, 8)), rng.integers(0, 4, size=10)
    try:
        model = _bn_cnn(np.random.default_rng(3))
        got = _through_model(model, x, y)
        assert model._split is not None
        monkeypatch.setattr(order, "_paired", lambda layers, i: False)
        apart_model = _bn_cnn(np.random.default_rng(3))
        want = _through_model(apart_model, x, y)
        assert apart_model._split is not None
    finally:
        engine_threads.set_threads(previous)
    _assert_same(got, want)


def test_a_model_with_the_pair_passes_the_gradient_check():
    # (Its convolution has no bias: before a batch norm that gradient is exactly 0, a relative error of noise.)
    rng = np.random.default_rng(10)
    model = _bn_cnn(rng)
    x, y = rng.standard_normal((4, 2, 8, 8)), rng.integers(0, 4, size=4)
    errors = check_model(model, x, y)
    assert max(errors.values()) < MODEL_TOL, errors
