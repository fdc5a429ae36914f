"""Resumable runs on a tiny synthetic task: Ctrl-C, resume to the bit, non-finite losses."""
import json
import os
import signal

import numpy as np
import pytest

from minicnn import SGD, CosineLR
from minicnn.data.augment import random_shift
from minicnn.nn.optim import Adam, AdamW, RMSprop
from minicnn.training import architectures
from minicnn.training import loop as train
from minicnn.training.checkpoint import CheckpointError, load_checkpoint
from minicnn.training.loop import NonFiniteLossError
from minicnn.training.runner import TrainingInterrupted, train_resumable

SPEC = architectures.mnist_cnn(channels=(2, 4), hidden=8)
EPOCHS, BATCH = 3, 16


def data():
    rng = np.random.default_rng(42)
    x = rng.standard_normal((70, 1, 28, 28)).astype(np.float32)  # 5 steps per epoch, the last one short
    y = (x[:, 0, :14].mean(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, :, :14].mean(axis=(1, 2)) > 0)
    return x, y, x[:20], y[:20]


def setup(seed=0, optimizer=None, spec=SPEC):
    rng = np.random.default_rng(seed)
    model = architectures.build_model(spec, rng=rng)
    opt = (optimizer or (lambda m: SGD(m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)))(model)
    sched = CosineLR(opt, total_steps=EPOCHS * 5, warmup_steps=2)
    return model, opt, sched, rng


def run(path, resume=None, on_step=None, seed=0, optimizer=None, spec=SPEC):
    model, opt, sched, rng = setup(seed, optimizer, spec)
    x, y, xt, yt = data()
    history = train_resumable(model, opt, x, y, xt, yt, epochs=EPOCHS, batch_size=BATCH, rng=rng,
                              checkpoint_path=path, scheduler=sched, augment=lambda xb, g: random_shift(xb, g, 2),
                              resume=resume, progress=False, on_step=on_step, log=lambda line: None)
    return model, history


def sigint_at(epoch, step):
    def hook(e, s):
        if (e, s) == (epoch, step):
            os.kill(os.getpid(), signal.SIGINT)
    return hook


def assert_same_weights(a, b):
    for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


@pytest.fixture(autouse=True)
def sigint_as_in_a_terminal():
    """These tests press Ctrl-C with os.kill; a background job starts with SIGINT ignored, where the runner
    (rightly) leaves it ignored. So each test starts as in a terminal, and what the suite found is put back."""
    found = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, found)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / "checkpoint.npz"
    model, history = run(path)
    return model, history, path


def test_history_and_checkpoint_of_a_full_run(uninterrupted):
    model, history, path = uninterrupted
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert all(0 <= r["test_accuracy"] <= 1 and r["seconds"] > 0 for r in history)
    ck = load_checkpoint(path, architecture=SPEC)
    assert ck.epoch == 3 and ck.step == 15 and "order" not in ck.extra
    assert json.loads(ck.extra_str("history")) == json.loads(json.dumps(history))
    assert history[-1]["lr"] == pytest.approx(0.0)


@pytest.mark.parametrize("epoch, step", [(1, 1), (2, 3), (3, 4)])
def test_ctrl_c_saves_where_it_stopped_and_resume_is_bit_identical(uninterrupted, tmp_path, epoch, step):
    path = tmp_path / "checkpoint.npz"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, default_int_handler in a terminal
    with pytest.raises(TrainingInterrupted, match=f"interrupted in epoch {epoch} after step {step}") as info:
        run(path, on_step=sigint_at(epoch, step))
    assert info.value.path == path
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    ck = load_checkpoint(path)
    assert ck.epoch == epoch - 1 and ck.step == (epoch - 1) * 5 + step
    assert int(ck.extra["epoch_step"]) == step and sorted(ck.extra["order"].tolist()) == list(range(70))
    model, history = run(path, resume=load_checkpoint(path))
    assert_same_weights(model, uninterrupted[0])
    full = uninterrupted[1]
    assert [r["test_accuracy"] for r in history] == [r["test_accuracy"] for r in full]
    assert [r["accuracy"] for r in history] == [r["accuracy"] for r in full]  # the split epoch is merged
    assert [r["loss"] for r in history] == pytest.approx([r["loss"] for r in full], rel=1e-9)


def test_resume_from_an_epoch_boundary_is_bit_identical(uninterrupted, tmp_path):
    path = tmp_path / "checkpoint.npz"
    seen = []
    with pytest.raises(TrainingInterrupted, match="interrupted after epoch 2;"):
        run(path, on_step=lambda e, s: seen.append((e, s)) or (e, s) == (2, 5) and os.kill(os.getpid(), signal.SIGINT))
    assert seen[-1] == (2, 5)  # Ctrl-C in the last step of an epoch: it is finished, evaluated and saved
    ck = load_checkpoint(path)
    assert ck.epoch == 2 and "order" not in ck.extra and len(json.loads(ck.extra_str("history"))) == 2
    model, _ = run(path, resume=load_checkpoint(path))
    assert_same_weights(model, uninterrupted[0])


def test_resume_of_a_finished_epoch_checkpoint(uninterrupted, tmp_path):
    """Kill the run after epoch 1 the hard way (no checkpoint at the stop), resume from epoch 1's file."""
    path = tmp_path / "checkpoint.npz"

    def die(e, s):
        if (e, s) == (2, 2):
            raise KeyboardInterrupt  # as a second Ctrl-C would: no saving, the file on disk stays

    with pytest.raises(KeyboardInterrupt):
        run(path, on_step=die)
    ck = load_checkpoint(path)
    assert ck.epoch == 1 and "order" not in ck.extra
    model, history = run(path, resume=ck)
    assert_same_weights(model, uninterrupted[0])
    assert len(history) == 3


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"

    def twice(e, s):
        if (e, s) == (2, 2):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run(path, on_step=twice)
    assert load_checkpoint(path).epoch == 1


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    state = {}

    def poison(e, s):
        if (e, s) == (2, 3):
            model = state["model"]
            model.layers[-1].params["b"][0] = np.inf

    model, opt, sched, rng = setup()
    state["model"] = model
    x, y, xt, yt = data()
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 4 \(learning rate"):
        train_resumable(model, opt, x, y, xt, yt, epochs=EPOCHS, batch_size=BATCH, rng=rng, checkpoint_path=path,
                        scheduler=sched, progress=False, on_step=poison, log=lambda line: None)
    ck = load_checkpoint(path)
    assert ck.epoch == 1 and all(np.isfinite(v).all() for v in ck.model.values())


def test_mismatched_training_set_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        run(path, on_step=sigint_at(1, 2))
    model, opt, sched, rng = setup()
    x, y, xt, yt = data()
    with pytest.raises(ValueError, match="training set of 70 images; this run has 50"):
        train_resumable(model, opt, x[:50], y[:50], xt, yt, epochs=EPOCHS, batch_size=BATCH, rng=rng,
                        checkpoint_path=path, scheduler=sched, resume=load_checkpoint(path), progress=False)


def test_train_epoch_in_pieces_equals_one_pass():
    """The hooks added to train_epoch for resuming: order, start_step and an on_step that stops."""
    x, y, _, _ = data()
    model_a, opt_a, _, rng_a = setup()
    order = np.random.default_rng(7).permutation(len(x))
    full = train.train_epoch(model_a, opt_a, x, y, batch_size=BATCH, rng=rng_a, order=order, progress=False)
    model_b, opt_b, _, rng_b = setup()
    first = train.train_epoch(model_b, opt_b, x, y, batch_size=BATCH, rng=rng_b, order=order, progress=False,
                              on_step=lambda step: step < 2)
    rest = train.train_epoch(model_b, opt_b, x, y, batch_size=BATCH, rng=rng_b, order=order, progress=False,
                             start_step=2)
    assert (first["steps"], rest["steps"], full["steps"]) == (2, 3, 5)
    assert (first["examples"], rest["examples"], full["examples"]) == (32, 38, 70)
    assert_same_weights(model_a, model_b)
    with pytest.raises(ValueError, match=r"permutation of range\(70\)"):
        train.train_epoch(model_b, opt_b, x, y, batch_size=BATCH, rng=rng_b, order=order[:5], progress=False)


def test_sigterm_saves_like_a_first_ctrl_c_and_restores_the_handlers_found(uninterrupted, tmp_path):
    path = tmp_path / "checkpoint.npz"

    def unhandled(signum, frame):  # what a SIGTERM the runner did not catch would reach (instead of killing pytest)
        raise AssertionError("SIGTERM reached the handler installed before the run")

    def term(e, s):
        if (e, s) == (2, 3):
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        with pytest.raises(TrainingInterrupted, match="interrupted in epoch 2 after step 3") as info:
            run(path, on_step=term)
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.signum == signal.SIGTERM
    assert int(load_checkpoint(path).extra["epoch_step"]) == 3
    model, _ = run(path, resume=load_checkpoint(path))
    assert_same_weights(model, uninterrupted[0])


def test_a_sigint_ignored_at_the_start_stays_ignored(tmp_path):
    """As under `nohup` or in a background job: SIGINT was set to SIG_IGN by whoever started us."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, history = run(tmp_path / "checkpoint.npz", on_step=sigint_at(1, 2))
        assert len(history) == EPOCHS  # the SIGINT changed nothing
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_divergence_in_an_epochs_last_step_stops_and_is_not_saved(tmp_path):
    """Every step's loss is finite, but the last update of epoch 2 ruins the weights: the test loss is NaN."""
    from minicnn.training.runner import DivergedError

    path = tmp_path / "checkpoint.npz"
    state = {}

    def poison(e, s):
        if (e, s) == (2, 5):
            state["model"].layers[-1].params["W"][:] = np.nan

    model, opt, sched, rng = setup()
    state["model"] = model
    x, y, xt, yt = data()
    with pytest.raises(DivergedError, match="test loss became nan after the last step in epoch 2"):
        train_resumable(model, opt, x, y, xt, yt, epochs=EPOCHS, batch_size=BATCH, rng=rng, checkpoint_path=path,
                        scheduler=sched, progress=False, on_step=poison, log=lambda line: None)
    ck = load_checkpoint(path)
    assert ck.epoch == 1 and all(np.isfinite(v).all() for v in ck.model.values())
    assert all(np.isfinite(r["test_loss"]) for r in json.loads(ck.extra_str("history")))


def test_the_runner_trains_in_training_mode_and_evaluates_in_evaluation_mode(tmp_path):
    model, opt, sched, rng = setup()
    conv = model.layers[0]
    seen, forward = [], conv.forward

    def spy(x):
        seen.append((len(x), getattr(conv, "training", True)))
        return forward(x)

    conv.forward = spy                   # on the instance: the architecture still describes the model
    x, y, xt, yt = data()
    train_resumable(model, opt, x, y, xt, yt, epochs=2, batch_size=BATCH, rng=rng, checkpoint_path=tmp_path / "c.npz",
                    scheduler=sched, progress=False, log=lambda line: None)
    assert seen == 2 * ([(16, True)] * 4 + [(6, True), (20, False)])
    assert model.training


@pytest.mark.parametrize("optimizer", [lambda m: Adam(m, lr=0.01, amsgrad=True),
                                       lambda m: AdamW(m, lr=0.01, weight_decay=0.1),
                                       lambda m: RMSprop(m, lr=0.001, momentum=0.9)], ids=["Adam", "AdamW", "RMSprop"])
def test_resume_with_adaptive_optimizers_is_bit_identical(tmp_path, optimizer):
    full, _ = run(tmp_path / "full.npz", optimizer=optimizer)
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        run(path, on_step=sigint_at(2, 3), optimizer=optimizer)
    resumed, _ = run(path, resume=load_checkpoint(path), optimizer=optimizer)
    assert_same_weights(resumed, full)
    with pytest.raises(CheckpointError, match=r"does not fit: optimizer state is from"):
        run(path, resume=load_checkpoint(path))            # resumed with SGD: refused


def test_resume_of_a_batch_norm_and_dropout_network_is_bit_identical(tmp_path):
    """The running statistics (buffers) and the dropout masks (drawn from the run's rng) continue exactly."""
    spec = architectures.fashion_cnn(channels=(2, 4), hidden=8, dropout=0.5)
    full, _ = run(tmp_path / "full.npz", spec=spec)
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        run(path, on_step=sigint_at(2, 3), spec=spec)
    stopped = load_checkpoint(path)
    assert "1.running_mean" in stopped.model and "5.running_var" in stopped.model
    resumed, _ = run(path, resume=stopped, spec=spec)
    assert_same_weights(resumed, full)
    for (name, a), (_, b) in zip(full.buffers(), resumed.buffers()):
        np.testing.assert_array_equal(b, a, err_msg=name)
    assert not np.array_equal(dict(full.buffers())["1.running_var"], np.ones(2, np.float32))
