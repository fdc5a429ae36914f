"""use_engine switches between the fast engine and the textbook math; both compute the same network."""
import threading

import numpy as np
import pytest

from minicnn import SGD, current_engine, use_engine
from minicnn.nn.gradcheck import small_cnn
from minicnn.nn.losses import softmax_cross_entropy


def test_fast_is_the_default_and_the_context_restores_it():
    assert current_engine() == "fast"
    with use_engine("textbook") as name:
        assert name == current_engine() == "textbook"
        with use_engine("fast"):
            assert current_engine() == "fast"
        assert current_engine() == "textbook"
    assert current_engine() == "fast"


def test_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"engine must be one of \('fast', 'textbook'\), got 'gpu'"):
        with use_engine("gpu"):
            pass


def test_the_choice_belongs_to_the_thread_that_made_it():
    seen = []
    with use_engine("textbook"):
        worker = threading.Thread(target=lambda: seen.append(current_engine()))
        worker.start()
        worker.join()
    assert seen == ["fast"]


def _train_step(engine, dtype):
    rng = np.random.default_rng(3)
    model = small_cnn(rng, dtype=dtype)
    x, y = rng.standard_normal((6, 1, 8, 8)).astype(dtype), rng.integers(0, 5, size=6)
    with use_engine(engine):
        logits = model.forward(x)
        _, dlogits = softmax_cross_entropy(logits, y)
        dx = model.backward(dlogits)
        SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3).step()
    return logits, dx, {name: (p.copy(), g.copy()) for name, p, g in model.parameters()}


# The engines sum in different orders (BLAS blocks against NumPy's matmul); the longest sums here have
# 3*3*3 = 27 to 16*6 products of values about 1, so a few eps * sum|terms| is ~1e-5 in float32, ~1e-14 in float64.
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_both_engines_give_the_same_training_step(dtype, tol):
    fast, textbook = _train_step("fast", dtype), _train_step("textbook", dtype)
    assert fast[0].dtype == textbook[0].dtype == dtype
    np.testing.assert_allclose(fast[0], textbook[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(fast[1], textbook[1], rtol=tol, atol=tol)
    for name, (param, grad) in fast[2].items():
        np.testing.assert_allclose(grad, textbook[2][name][1], rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(param, textbook[2][name][0], rtol=tol, atol=tol, err_msg=name)


def test_backward_follows_the_engine_its_forward_ran_on():
    rng = np.random.default_rng(4)
    model = small_cnn(rng)
    x, y = rng.standard_normal((2, 1, 8, 8)), rng.integers(0, 5, size=2)
    with use_engine("textbook"):
        _, d = softmax_cross_entropy(model.forward(x), y)
    dx_mixed = model.backward(d)              # outside the context: must still run the textbook backward
    with use_engine("textbook"):
        model.forward(x)
        dx_textbook = model.backward(d)
    np.testing.assert_array_equal(dx_mixed, dx_textbook)
