"""The batch split over the engine's threads or worker processes (minicnn.nn.split), through Sequential: same numbers,
whole where it must be."""
import numpy as np
import pytest

from minicnn import Conv2D, Flatten, Sequential, current_engine
from minicnn.nn import ops
from minicnn.nn.gradcheck import MODEL_TOL, check_model, small_cnn

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


@pytest.fixture(params=["processes", "threads"])
def two_threads(request):
    """Two engine threads; the whole-model split's second part in a worker process (on Linux) or a thread."""
    from minicnn.engine import threads, workers
    previous, processes = threads.threads(), workers.available()
    threads.set_threads(2)
    workers.set_processes(request.param == "processes")
    if request.param == "processes" and not workers.available():
        pytest.skip("worker processes need Linux")
    yield request.param
    threads.set_threads(previous)
    workers.set_processes(processes)


def _step(model, x, y, need_input_grad=False):
    from minicnn.nn.losses import softmax_cross_entropy
    logits = model.forward(x)
    dx = model.backward(softmax_cross_entropy(logits, y)[1], need_input_grad=need_input_grad)
    return logits, dx, {name: g.copy() for name, _, g in model.parameters()}


def _split_case(dtype=np.float64, batch=40):
    rng = np.random.default_rng(5)
    model = small_cnn(rng, dtype=dtype, channels=2, classes=4)
    x, y = rng.standard_normal((batch, 2, 8, 8)).astype(dtype), rng.integers(0, 4, size=batch)
    return model, x, y


def test_a_batch_splits_over_the_fast_engines_threads_and_gives_the_whole_batchs_numbers(two_threads):
    from minicnn.engine import threads
    model, x, y = _split_case()
    logits, dx, grads = _step(model, x, y, need_input_grad=True)
    assert (model._split is not None) == (current_engine() == "fast")   # only the fast engine has threads
    threads.set_threads(1)
    whole = _step(small_cnn(np.random.default_rng(5), channels=2, classes=4), x, y, need_input_grad=True)
    # Every example runs through the same code alone in its part, so the output and dx are the same numbers;
    # each gradient is the sum of the two parts' sums, one more rounding in float64.
    np.testing.assert_array_equal(logits, whole[0])
    np.testing.assert_array_equal(dx, whole[1])
    assert grads.keys() == whole[2].keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], whole[2][name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_split_model_passes_the_gradient_check(two_threads, monkeypatch):
    from minicnn.engine import threads
    if current_engine() != "fast":
        pytest.skip("only the fast engine splits a batch")
    monkeypatch.setattr(threads, "MIN_EXAMPLES", 2)       # parts of 2 examples: a small batch splits too
    model, x, y = _split_case(batch=4)
    errors = check_model(model, x, y)
    assert model._split is not None
    assert max(errors.values()) < MODEL_TOL, errors


def test_a_split_step_is_reproducible_and_backward_twice_gives_the_same_grads(two_threads):
    model, x, y = _split_case(np.float32)
    first = _step(model, x, y)
    again = _step(small_cnn(np.random.default_rng(5), dtype=np.float32, channels=2, classes=4), x, y)
    np.testing.assert_array_equal(first[0], again[0])
    for name in first[2]:
        np.testing.assert_array_equal(first[2][name], again[2][name])
    from minicnn.nn.losses import softmax_cross_entropy
    model.backward(softmax_cross_entropy(first[0], y)[1])
    for name, _, g in model.parameters():
        np.testing.assert_array_equal(g, first[2][name])
    assert first[1] is None                       # no dx unless asked for, split or not


def test_what_cannot_run_on_part_of_a_batch_stays_whole(two_threads):
    from minicnn import BatchNorm2D, Dropout, Layer
    from minicnn.nn.activations import ReLU as MinicnnReLU

    class Mine(MinicnnReLU, register=False):      # your own class: its forward might look across the batch
        pass

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 8, 8))
    bn = Sequential([Conv2D(1, 2, 3, rng=rng, dtype=np.float64), BatchNorm2D(2, dtype=np.float64), Flatten()])
    bn.forward(x)                                  # batch norm's statistics are sums: its parts add them together
    assert (bn._split is not None and bn._split.together) == (current_engine() == "fast")
    bn.eval().forward(x)
    assert (bn._split is not None and not bn._split.together) == (current_engine() == "fast")
    dropout = Sequential([Flatten(), Dropout(0.5, rng=rng)])
    dropout.forward(x)
    assert dropout._split is None                  # a mask drawn for the whole batch from one generator
    assert Sequential([Mine(), Flatten()]).forward(x) is not None
    mine = Sequential([Mine(), Flatten()])
    mine.forward(x)
    assert mine._split is None and isinstance(mine.layers[0], Layer)
    small = Sequential([Flatten()])
    small.forward(x[:31])                          # fewer than 16 examples per thread
    assert small._split is None


def test_a_split_backward_says_which_shape_it_expected(two_threads):
    model, x, y = _split_case()
    model.forward(x)
    with pytest.raises(ValueError, match=r"expected dout of the forward output's shape \(40, 4\), got \(39, 4\)"
                       if model._split is not None else "shape"):
        model.backward(np.zeros((39, 4)))


def test_a_bad_batch_is_named_as_given_not_as_a_part(two_threads):
    model, x, _ = _split_case()
    with pytest.raises(ValueError, match=r"\(40, 3, 8, 8\)"):     # three channels where the first conv takes two
        model.forward(np.zeros((40, 3, 8, 8)))
    assert model._split is None


def _bn_case(dtype=np.float64, batch=40):
    from minicnn import BatchNorm1D, BatchNorm2D, Dense, MaxPool2D, ReLU
    rng = np.random.default_rng(6)
    model = Sequential([
        Conv2D(2, 3, 3, padding=1, bias=False, rng=rng, dtype=dtype), BatchNorm2D(3, dtype=dtype), ReLU(), MaxPool2D(2),
        Flatten(), BatchNorm1D(48, dtype=dtype), Dense(48, 4, rng=rng, dtype=dtype)])
    for layer in (model.layers[1], model.layers[5]):          # gamma and beta away from 1 and 0
        layer.params["gamma"][:] = rng.uniform(0.5, 1.5, layer.num_features)
        layer.params["beta"][:] = rng.uniform(-0.5, 0.5, layer.num_features)
    x, y = rng.standard_normal((batch, 2, 8, 8)).astype(dtype), rng.integers(0, 4, size=batch)
    return model, x, y


def test_batch_norm_splits_and_gives_the_whole_batchs_numbers_up_to_the_grouping_of_its_sums(two_threads):
    from minicnn.engine import threads
    if current_engine() != "fast":
        pytest.skip("only the fast engine splits a batch")
    model, x, y = _bn_case(batch=41)                          # parts of 20 and 21 examples: n differs per part
    logits, dx, grads = _step(model, x, y, need_input_grad=True)
    assert model._split is not None and model._split.together
    running = {name: v.copy() for name, v in model.buffers()}
    threads.set_threads(1)
    whole_model = _bn_case(batch=41)[0]
    whole = _step(whole_model, x, y, need_input_grad=True)
    assert whole_model._split is None
    # Every sum is the same terms grouped by part: float64 rounding, far below these tolerances.
    np.testing.assert_allclose(logits, whole[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, whole[1], rtol=1e-10, atol=1e-14)
    for name in grads:
        np.testing.assert_allclose(grads[name], whole[2][name], rtol=1e-10, atol=1e-14, err_msg=name)
    for name, value in whole_model.buffers():              # the running statistics moved once, not once per part
        np.testing.assert_allclose(running[name], value, rtol=1e-12, atol=1e-15, err_msg=name)


def test_a_split_batch_norm_model_passes_the_gradient_check_and_repeats_itself(two_threads, monkeypatch):
    from minicnn.engine import threads
    if current_engine() != "fast":
        pytest.skip("only the fast engine splits a batch")
    monkeypatch.setattr(threads, "MIN_EXAMPLES", 3)
    model, x, y = _bn_case(batch=7)
    errors = check_model(model, x, y)
    assert model._split is not None and model._split.together
    assert max(errors.values()) < MODEL_TOL, errors
    model32, x32, y32 = _bn_case(np.float32)
    first = _step(model32, x32, y32)
    again = _step(_bn_case(np.float32)[0], x32, y32)
    np.testing.assert_array_equal(first[0], again[0])
    for name in first[2]:
        np.testing.assert_array_equal(first[2][name], again[2][name], err_msg=name)


@pytest.mark.parametrize("count", [1, 2])
def test_a_big_batch_runs_in_parts_of_at_most_max_examples_with_the_whole_batchs_numbers(count, monkeypatch):
    from minicnn.engine import threads
    if current_engine() != "fast":
        pytest.skip("only the fast engine splits a batch")
    monkeypatch.setattr(threads, "MIN_EXAMPLES", 2)
    monkeypatch.setattr(threads, "MAX_EXAMPLES", 6)
    previous = threads.threads()
    try:
        threads.set_threads(count)
        model, x, y = _split_case(batch=25)
        orders = []
        for name in ("run_parts", "run_parts_here"):      # on threads, or here beside worker processes
            def spy(fn, ranges, sums_or_together=None, last_first=False, run=getattr(ops, name)):
                orders.append(last_first)
                return run(fn, ranges, sums_or_together, last_first)
            monkeypatch.setattr(ops, name, spy)
        logits, dx, grads = _step(model, x, y, need_input_grad=True)
        assert orders == [False, True]              # the backward runs each thread's parts from the last
        assert model._split is not None and len(model._split.ranges) == (5 if count == 1 else 6)
        assert max(hi - lo for lo, hi in model._split.ranges) <= 6
        bn, bx, by = _bn_case(batch=25)
        _step(bn, bx, by)
        assert (bn._split is None) == (count == 1)                 # parts that add sums run at once, one per thread
        assert bn._split is None or len(bn._split.ranges) == count
        monkeypatch.setattr(threads, "MAX_EXAMPLES", 1000)
        threads.set_threads(1)
        whole_model = small_cnn(np.random.default_rng(5), channels=2, classes=4)
        whole = _step(whole_model, x, y, need_input_grad=True)
        assert whole_model._split is None
    finally:
        threads.set_threads(previous)
    # Each example through the same code; the products of parts of 5 rows may round differently from the whole
    # batch's on oneMKL (the mkl extra), and each gradient is the parts' sum, in order: float64 rounding.
    np.testing.assert_allclose(logits, whole[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, whole[1], rtol=1e-12, atol=1e-14)
    for name in grads:
        np.testing.assert_allclose(grads[name], whole[2][name], rtol=1e-12, atol=1e-14, err_msg=name)


# -- the split over worker processes ----------------------------------------------------------------------------

@pytest.fixture
def processes(two_threads):
    if two_threads != "processes" or current_engine() != "fast":
        pytest.skip("worker processes: the fast engine's split, on Linux")


def test_a_split_runs_its_second_part_in_a_worker_that_sees_every_new_value(processes):
    from minicnn.nn import split
    model, x, y = _split_case()
    first = _step(model, x, y, need_input_grad=True)
    assert isinstance(model._split, split.ProcessSplit)
    team = model._split.team
    state = {name: v * 0.5 for name, v in model.state_dict().items()}
    model.load_state_dict(state)                       # new values, same arrays: the same worker takes them
    second = _step(model, x, y, need_input_grad=True)
    assert model._split.team is team
    whole_model = _split_case()[0]
    whole_model.load_state_dict(state)
    whole_model.layers = list(whole_model.layers)
    from minicnn.engine import threads
    threads.set_threads(1)
    whole = _step(whole_model, x, y, need_input_grad=True)
    np.testing.assert_array_equal(second[0], whole[0])
    np.testing.assert_array_equal(second[1], whole[1])
    assert not np.array_equal(first[0], second[0])
    for name in whole[2]:
        np.testing.assert_allclose(second[2][name], whole[2][name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_changed_model_or_thread_count_gets_new_workers(processes):
    from minicnn import Dense
    from minicnn.engine import threads
    model, x, y = _split_case()
    _step(model, x, y)
    team = model._split.team
    model.layers[-1] = Dense(model.layers[-1].in_features, 4, rng=np.random.default_rng(1), dtype=np.float64)
    _step(model, x, y)
    assert model._split.team is not team and team.closed
    team = model._split.team
    threads.set_threads(3)
    _step(model, x, y)
    assert model._split.team is not team and model._split.team.count == 3 and len(model._split.ranges) == 2


def test_a_killed_worker_costs_one_whole_batch_and_the_next_step_forks_again(processes):
    import os
    import signal
    model, x, y = _split_case()
    _step(model, x, y)
    team = model._split.team
    os.kill(team.pids[0], signal.SIGKILL)
    os.waitpid(team.pids[0], 0)
    logits = _step(model, x, y)[0]
    assert model._split is None and team.closed       # that batch ran whole, with the whole batch's numbers
    _step(model, x, y)
    assert model._split is not None and model._split.team is not team and not model._split.team.closed
    np.testing.assert_array_equal(model.forward(x), logits)


def test_at_most_max_teams_models_keep_workers(processes):
    from minicnn.nn import split
    models = [_split_case()[0] for _ in range(split.MAX_TEAMS + 2)]
    x = _split_case()[1]
    teams = []
    for model in models:
        model.forward(x)
        teams.append(model._split.team)
    assert [t.closed for t in teams] == [True, True] + [False] * split.MAX_TEAMS
    del models, model
    import gc
    gc.collect()
    assert all(t.closed for t in teams)                # a model that is gone ends its workers


def test_batch_norm_in_evaluation_takes_the_running_statistics_of_this_process(processes):
    from minicnn.engine import threads
    model, x, y = _bn_case(batch=41)
    _step(model, x, y)
    model.eval()
    for layer in (model.layers[1], model.layers[5]):
        layer.buffers["running_var"][:] = np.linspace(0.5, 2.0, layer.num_features)
    out = model.forward(x)
    assert model._split is not None and not model._split.together
    threads.set_threads(1)
    np.testing.assert_array_equal(out, model.forward(x))
    assert model._split is None


@pytest.mark.parametrize("route", ["inbox", "socket", "no board"])
def test_a_workers_input_and_answers_take_any_route_and_its_split_follows_the_modes(processes, monkeypatch, route):
    # The share's input goes in the worker's inbox on the board when it fits, else on the socket; the worker's
    # answers come on the board, or without one on the socket.  The worker keeps its split while the ranges and
    # modes stay, and makes a new one when they change: train, evaluate, train again, as the threads do.
    from minicnn.engine import workers
    from minicnn.nn import split
    if route == "socket":
        monkeypatch.setattr(workers._Board, "SIZES", (workers.BOARD_SLOT, workers.BOARD_SLOT, 1024))
    if route == "no board":
        monkeypatch.setattr(workers, "_board", False)
    results = []
    for mode in ("processes", "threads"):
        workers.set_processes(mode == "processes")
        model, x, y = _bn_case(batch=41)
        kind = split.ProcessSplit if mode == "processes" else split.Split
        seen = [_step(model, x, y, need_input_grad=True)]
        assert type(model._split) is kind and model._split.together          # not the whole batch after an error
        if mode == "processes":
            assert (model._split.team.board is not None) == (route != "no board" and workers._board)
        model.eval()
        seen.append((model.forward(x),))
        assert type(model._split) is kind and not model._split.together
        model.train()
        seen.append(_step(model, x, y, need_input_grad=True))
        assert type(model._split) is kind and model._split.together
        results.append(seen)
    for got, expected in zip(*results):
        for a, b in zip(got[:2], expected[:2]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        for name in (got[2] if len(got) > 2 else {}):
            np.testing.assert_allclose(got[2][name], expected[2][name], rtol=1e-12, atol=1e-14, err_msg=name)

