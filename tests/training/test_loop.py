import numpy as np
import pytest

from minicnn import SGD, Conv2D, CosineLR, Dense, Flatten, MaxPool2D, NonFiniteLossError, ReLU, Sequential, evaluate, fit, predict


def _tiny_cnn(rng):
    return Sequential([Conv2D(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Conv2D(8, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(8 * 2 * 2, 32, rng=rng), ReLU(), Dense(32, 4, rng=rng)])


def _data(rng, n=32):
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 4, size=n)


def test_small_cnn_overfits_32_random_samples():
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    model = _tiny_cnn(rng)
    history = fit(model, SGD(model, lr=0.02, momentum=0.9), x, y, epochs=60, batch_size=8, rng=rng,
                  progress=False, verbose=False)
    assert history[-1]["loss"] < 0.01
    loss, accuracy = evaluate(model, x, y)
    assert loss < 0.01 and accuracy == 1.0
    np.testing.assert_array_equal(predict(model, x), y)


def test_history_records_and_validation():
    rng = np.random.default_rng(1)
    x, y = _data(rng)
    model = _tiny_cnn(rng)
    opt = SGD(model, lr=0.01, momentum=0.9)
    sched = CosineLR(opt, total_steps=8)
    history = fit(model, opt, x, y, epochs=2, batch_size=8, rng=rng, x_val=x[:8], y_val=y[:8],
                  scheduler=sched, progress=False, verbose=False)
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert {"loss", "accuracy", "seconds", "lr", "val_loss", "val_accuracy"} <= set(h)
        assert h["seconds"] > 0 and 0 <= h["accuracy"] <= 1
    assert history[-1]["lr"] == pytest.approx(0.0) and sched.t == 8  # stepped once per batch


def test_same_seed_same_weights_to_the_bit():
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        x, y = _data(rng)
        model = _tiny_cnn(rng)
        fit(model, SGD(model, lr=0.05, momentum=0.9), x, y, epochs=2, batch_size=8, rng=rng,
            progress=False, verbose=False)
        runs.append(model.state_dict())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_callback_can_stop_and_summary_line_is_printed(capsys):
    rng = np.random.default_rng(2)
    x, y = _data(rng)
    model = _tiny_cnn(rng)
    history = fit(model, SGD(model, lr=0.01), x, y, epochs=5, batch_size=16, rng=rng, progress=False,
                  callback=lambda record: record["epoch"] < 2)
    assert len(history) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch 1  loss ") and " acc " in lines[0] and lines[0].endswith("s")


def test_mse_regression_fit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    target = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = Sequential([Dense(3, 1, rng=rng)])
    history = fit(model, SGD(model, lr=0.1), x, target, epochs=50, batch_size=16, rng=rng, loss="mse",
                  progress=False, verbose=False)
    assert history[-1]["loss"] < 1e-6 and history[-1]["accuracy"] is None


def test_fit_rejects_bad_data():
    rng = np.random.default_rng(4)
    x, y = _data(rng, 8)
    model = _tiny_cnn(rng)
    opt = SGD(model, lr=0.01)
    kw = dict(epochs=1, batch_size=4, rng=rng, progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"different lengths: 8 and 7"):
        fit(model, opt, x, y[:7], **kw)
    bad = x.copy()
    bad[0, 0, 0, 0], bad[1, 0, 0, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"contains 2 NaN or infinite values"):
        fit(model, opt, bad, y, **kw)
    with pytest.raises(ValueError, match=r"class labels must be integers, got dtype float64"):
        fit(model, opt, x, y.astype(np.float64), **kw)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3 for 4 classes"):
        fit(model, opt, x, y + 4, **kw)
    with pytest.raises(ValueError, match=r"must be floating point, got dtype uint8"):
        fit(model, opt, x.astype(np.uint8), y, **kw)
    with pytest.raises(ValueError, match=r"x_val and its targets have different lengths"):
        fit(model, opt, x, y, x_val=x, y_val=y[:3], **kw)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        fit(model, opt, x, y, **{**kw, "batch_size": 0})
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator"):
        fit(model, opt, x, y, **{**kw, "rng": 0})


def test_non_finite_loss_stops_with_epoch_step_and_lr():
    rng = np.random.default_rng(5)
    x, y = _data(rng, 16)
    model = _tiny_cnn(rng)
    with np.errstate(all="ignore"):
        with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, step \d+ \(learning rate 1e\+06\)"):
            fit(model, SGD(model, lr=1e6), x * 1e3, y, epochs=5, batch_size=4, rng=rng, progress=False,
                verbose=False)


class ModeSpy:
    """A test double whose output depends on its mode: x in training, 2 * x in evaluation; it logs (rows, training)."""

    def __init__(self, fail_in_eval=False):
        self.params, self.grads = {}, {}
        self.training, self.calls, self.fail_in_eval = True, [], fail_in_eval

    def forward(self, x):
        self.calls.append((len(x), self.training))
        if not self.training and self.fail_in_eval:
            raise RuntimeError("spy failed")
        return x if self.training else 2 * x

    def backward(self, dout, need_dx=True):
        return dout


def _spy_model(rng, *spies):
    return Sequential([Flatten(), *spies, Dense(64, 4, rng=rng)])


def test_fit_trains_in_training_mode_and_validates_in_evaluation_mode():
    rng = np.random.default_rng(3)
    x, y = _data(rng, n=24)
    spy = ModeSpy()
    model = _spy_model(rng, spy)
    model.eval()                                   # fit switches to training mode itself
    fit(model, SGD(model, lr=0.01), x, y, epochs=2, batch_size=8, rng=rng, x_val=x[:5], y_val=y[:5],
        progress=False, verbose=False)
    assert spy.calls == 2 * ([(8, True)] * 3 + [(5, False)])
    assert model.training                          # left in training mode, as evaluate found it


def test_evaluate_and_predict_run_in_evaluation_mode_and_restore_each_layers_flag():
    rng = np.random.default_rng(4)
    x, y = _data(rng, n=6)
    a, b = ModeSpy(), ModeSpy()
    model = _spy_model(rng, a, b)
    a.training = False                             # a mixed model: each flag is put back as it was
    dense = model.layers[-1]
    assert not hasattr(dense, "training") or dense.training
    had_flag = hasattr(dense, "training")
    logits = predict(model, x, return_logits=True)
    np.testing.assert_allclose(logits, dense.forward(4 * x.reshape(6, -1)), rtol=1e-6)   # both spies doubled
    loss, _ = evaluate(model, x, y)
    assert a.calls == b.calls == [(6, False), (6, False)]
    assert (a.training, b.training) == (False, True) and hasattr(dense, "training") == had_flag
    model.train()
    np.testing.assert_array_equal(predict(model, x), predict(model, x))
    assert model.training and loss == pytest.approx(evaluate(model, x, y)[0], rel=1e-6)


def test_evaluation_mode_is_restored_when_evaluation_fails():
    rng = np.random.default_rng(5)
    x, y = _data(rng, n=4)
    spy = ModeSpy(fail_in_eval=True)
    model = _spy_model(rng, spy)
    for run in (lambda: evaluate(model, x, y), lambda: predict(model, x)):
        with pytest.raises(RuntimeError, match="spy failed"):
            run()
        assert spy.training and model.training


def test_evaluate_averages_the_probabilities_over_test_time_copies():
    from minicnn.nn.losses import softmax
    rng = np.random.default_rng(5)
    model = Sequential([Flatten(), Dense(16, 3, rng=rng, dtype=np.float64)])
    x, y = rng.standard_normal((7, 1, 4, 4)), rng.integers(0, 3, 7)
    plain = evaluate(model, x, y)
    assert evaluate(model, x, y, copies=lambda xb: [xb]) == pytest.approx(plain, rel=1e-12)
    mirrored = lambda xb: [xb, xb[:, :, :, ::-1]]
    p = (softmax(model.forward(x)) + softmax(model.forward(x[:, :, :, ::-1]))) / 2
    loss, accuracy = evaluate(model, x, y, batch_size=3, copies=mirrored)
    assert loss == pytest.approx(-np.log(p[np.arange(7), y]).mean(), rel=1e-12)
    assert accuracy == np.mean(p.argmax(axis=1) == y)
    with pytest.raises(ValueError, match="cross-entropy loss only"):
        evaluate(model, x, rng.standard_normal((7, 3)), loss="mse", copies=mirrored)


def test_label_smoothing_trains_on_the_smoothed_loss():
    from minicnn.nn.losses import softmax_cross_entropy
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 1, 4, 4)), rng.integers(0, 3, 8)
    losses = {}
    for s in (0.0, 0.2):
        model = Sequential([Flatten(), Dense(16, 3, rng=np.random.default_rng(1), dtype=np.float64)])
        expected = softmax_cross_entropy(model.forward(x), y, smoothing=s)[0]
        history = fit(model, SGD(model, lr=1e-300), x, y, epochs=1, batch_size=8, rng=np.random.default_rng(0),
                      verbose=False, label_smoothing=s)          # one batch, loss taken before the (tiny) step
        losses[s] = history[0]["loss"]
        assert losses[s] == pytest.approx(expected, rel=1e-12)
    assert losses[0.2] != losses[0.0]
    with pytest.raises(ValueError, match="cross-entropy loss only"):
        fit(model, SGD(model, lr=0.1), x, rng.standard_normal((8, 3)), epochs=1, batch_size=8,
            rng=np.random.default_rng(0), verbose=False, loss="mse", label_smoothing=0.1)
