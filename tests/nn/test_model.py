import io

import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, current_engine
from minicnn.nn.gradcheck import MODEL_TOL, check_model, small_cnn

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


def test_whole_cnn_gradient_check_through_cross_entropy():
    rng = np.random.default_rng(0)
    model = small_cnn(rng, channels=2, classes=4)  # conv-relu-pool-conv-relu-pool-flatten-dense-relu-dense
    x, y = rng.standard_normal((3, 2, 8, 8)), rng.integers(0, 4, size=3)
    errors = check_model(model, x, y)
    assert {"dx", "0.W", "0.b", "3.W", "3.b", "7.W", "7.b", "9.W", "9.b"} == set(errors)
    assert max(errors.values()) < MODEL_TOL, errors


def test_summary_counts_parameters():
    single = Sequential([Conv2D(1, 1, 3, rng=np.random.default_rng(0))])
    assert single.num_params() == 10  # 9 weights + 1 bias
    dense = Sequential([Flatten(), Dense(784, 784, rng=np.random.default_rng(0))])
    text = dense.summary(input_shape=(1, 28, 28), file=io.StringIO())
    assert dense.num_params() == 615_440
    assert "Total params: 615,440" in text and "(N, 784)" in text


def test_summary_prints_shapes_and_counts(capsys):
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(8 * 14 * 14, 10, rng=rng)])
    model.summary((1, 28, 28))
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    engine = current_engine()
    assert "(N, 8, 28, 28)" in lines[2] and lines[2].endswith(f"80  {engine}")
    assert "(N, 8, 14, 14)" in lines[4] and "(N, 1568)" in lines[5]
    assert f"15,690  {engine}" in lines[6]
    assert lines[-2:] == [f"Total params: {80 + 15690:,}", f"Engine: {engine}"]


def test_state_dict_round_trip_and_shape_checks():
    rng = np.random.default_rng(1)
    a, b = small_cnn(rng, dtype=np.float32), small_cnn(rng, dtype=np.float32)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    weights_before = b.layers[0].params["W"]
    b.load_state_dict(a.state_dict())
    assert b.layers[0].params["W"] is weights_before  # loaded in place, optimizers keep their references
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state = a.state_dict()
    state["0.W"] = np.zeros((3, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"state_dict\['0.W'\] has shape \(3, 1, 5, 5\), the model expects \(3, 1, 3, 3\)"):
        b.load_state_dict(state)
    state = a.state_dict()
    del state["9.b"]
    state["10.W"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['9.b'\], unexpected \['10.W'\]"):
        b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))  # a refused load changes nothing


def test_state_dict_returns_copies():
    model = Sequential([Dense(2, 2, rng=np.random.default_rng(0))])
    state = model.state_dict()
    state["0.W"][:] = 7
    assert not (model.layers[0].params["W"] == 7).any()


def test_sequential_rejects_non_layers():
    with pytest.raises(ValueError, match=r"layer 1 \(int\) lacks forward, backward, params, grads"):
        Sequential([ReLU(), 3])


def test_backward_by_default_skips_the_input_grad_and_gives_the_same_grads():
    rng = np.random.default_rng(1)
    model = small_cnn(rng, channels=1, classes=4)
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    out = model.forward(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = model.backward(dout, need_input_grad=True)   # asked for: the input's gradient
    assert dx.shape == x.shape and dx.dtype == np.float32
    dx = dx.copy()
    full = {name: g.copy() for name, _, g in model.parameters()}
    for _, _, g in model.parameters():
        g.fill(np.nan)
    assert model.backward(dout) is None               # the default, as in training: no dx for the data
    for name, _, g in model.parameters():
        np.testing.assert_array_equal(g, full[name], err_msg=name)
    np.testing.assert_array_equal(model.backward(dout, need_input_grad=True), dx)


def test_backward_without_input_grad_accepts_layers_without_the_keyword():
    class Scale:
        """A user layer whose backward takes only dout."""

        def __init__(self):
            self.params, self.grads = {"s": np.array([2.0])}, {"s": np.zeros(1)}

        def forward(self, x):
            self._x = x
            return x * self.params["s"]

        def backward(self, dout):
            self.grads["s"][...] = np.sum(dout * self._x)
            return dout * self.params["s"]

    rng = np.random.default_rng(2)
    model = Sequential([Scale(), Dense(3, 2, rng=rng)])
    x = rng.standard_normal((4, 3))
    model.forward(x)
    dout = rng.standard_normal((4, 2))
    dx = model.backward(dout, need_input_grad=True)
    s_grad = model.layers[0].grads["s"].copy()
    assert dx.shape == x.shape
    assert model.backward(dout) is None
    np.testing.assert_array_equal(model.layers[0].grads["s"], s_grad)


def test_summary_says_where_the_shapes_break():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 4, 3, rng=rng), ReLU(), Flatten(), Dense(999, 10, rng=rng)])
    with pytest.raises(ValueError, match=r"layer 3 \(Dense\), which receives \(2704,\).*\(999,\)"):
        model.summary(input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D\), which receives \(3, 28, 28\)"):
        model.summary(input_shape=(3, 28, 28))


class Running:
    """A test double for a layer with running statistics and two modes (like batch norm, much simplified).

    Training: out = x * w, and ``running_mean`` moves towards the batch mean; evaluation: out = x * w - running_mean.
    Shape: x (N, D) -> out (N, D)
    """

    def __init__(self, d=2):
        self.params, self.grads = {"w": np.ones(d)}, {"w": np.zeros(d)}
        self.buffers = {"running_mean": np.zeros(d), "seen": np.zeros((), np.int64)}
        self.training = True

    def forward(self, x):
        if self.training:
            self.buffers["running_mean"] += 0.5 * (x.mean(axis=0) - self.buffers["running_mean"])
            self.buffers["seen"] += len(x)
            return x * self.params["w"]
        return x * self.params["w"] - self.buffers["running_mean"]

    def backward(self, dout, need_dx=True):
        self.grads["w"][...] = 0.0
        return dout * self.params["w"]

    def output_shape(self, input_shape):
        return input_shape


class NoFlag:
    """A layer written before modes existed: no ``training`` attribute, no ``buffers``."""

    params, grads = {}, {}

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


def test_train_and_eval_set_every_layer_and_return_the_model():
    model = Sequential([Dense(2, 2, rng=np.random.default_rng(0)), Running(), NoFlag()])
    assert model.training
    assert model.eval() is model and not model.training
    assert [layer.training for layer in model.layers] == [False, False, False]
    assert model.train() is model and model.training and all(layer.training for layer in model.layers)
    assert model.train(False) is model and not model.training
    model.layers[0].training = True
    assert not model.training          # true only when every layer trains
    x = np.ones((3, 2))
    np.testing.assert_array_equal(model.eval().forward(x), model.layers[0].forward(x))   # running_mean is 0 so far
    with pytest.raises(ValueError, match=r"mode must be True or False, got 'eval'"):
        model.train("eval")
    assert Sequential([NoFlag()]).training       # a layer without the flag counts as training


def test_state_dict_holds_buffers_and_load_restores_them_in_place():
    a = Sequential([Dense(2, 2, rng=np.random.default_rng(0)), Running()])
    a.forward(np.arange(6.0).reshape(3, 2))
    state = a.state_dict()
    assert list(state) == ["0.W", "0.b", "1.w", "1.running_mean", "1.seen"]
    np.testing.assert_array_equal(state["1.running_mean"], a.layers[1].buffers["running_mean"])
    assert int(state["1.seen"]) == 3 and state["1.seen"].dtype == np.int64
    state["1.running_mean"][:] = 99       # a copy
    assert not (a.layers[1].buffers["running_mean"] == 99).any()
    b = Sequential([Dense(2, 2, rng=np.random.default_rng(1)), Running()])
    held = b.layers[1].buffers["running_mean"]
    b.load_state_dict(a.state_dict())
    assert b.layers[1].buffers["running_mean"] is held
    for name, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[name], value, err_msg=name)
    x = np.ones((2, 2))
    np.testing.assert_array_equal(a.eval().forward(x), b.eval().forward(x))
    bad = {**a.state_dict(), "1.running_mean": np.zeros(3)}
    before = b.state_dict()
    with pytest.raises(ValueError, match=r"state_dict\['1.running_mean'\] has shape \(3,\), the model expects \(2,\)"):
        b.load_state_dict(bad)
    partial = {k: v for k, v in a.state_dict().items() if k != "1.seen"}
    with pytest.raises(ValueError, match=r"missing \['1.seen'\], unexpected \[\]"):
        b.load_state_dict(partial)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['2.running_mean'\]"):
        b.load_state_dict({**a.state_dict(), "2.running_mean": np.zeros(2)})
    for name, value in before.items():
        np.testing.assert_array_equal(b.state_dict()[name], value, err_msg=name)   # refused loads change nothing


def test_a_name_both_parameter_and_buffer_is_refused():
    layer = Running()
    layer.buffers["w"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"layer 0 \(Running\) has \['w'\] both as parameters and as buffers"):
        Sequential([layer])
