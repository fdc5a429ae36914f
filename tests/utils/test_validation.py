import numpy as np
import pytest

from minicnn import SGD, Conv2D, CosineLR, Dense, Sequential
from minicnn.training.loop import fit, predict


@pytest.mark.parametrize("make", [lambda dt: Dense(4, 2, dtype=dt), lambda dt: Conv2D(1, 2, 3, dtype=dt)])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, bool, np.complex64])
def test_layers_accept_floating_dtypes_only(make, dtype):
    with pytest.raises(ValueError, match=rf"dtype must be a floating NumPy dtype such as np.float32.*got {np.dtype(dtype)}"):
        make(dtype)
    assert make(np.float64).params["W"].dtype == np.float64


def test_numpy_scalars_are_accepted_and_bools_refused():
    model = Sequential([Dense(2, 2, rng=np.random.default_rng(0))])
    opt = SGD(model, lr=np.float32(0.1), momentum=np.float64(0.9))
    assert opt.lr == pytest.approx(0.1) and type(opt.lr) is float
    x, y = np.ones((6, 2), np.float32), np.array([0, 1] * 3)
    history = fit(model, opt, x, y, epochs=np.int64(1), batch_size=np.int64(4), rng=np.random.default_rng(0),
                  verbose=False)
    assert history[0]["steps"] == 2
    with pytest.raises(ValueError, match=r"lr must be a finite number, got True"):
        SGD(model, lr=True)
    with pytest.raises(ValueError, match=r"batch_size must be an int, got True"):
        fit(model, opt, x, y, epochs=1, batch_size=True, rng=np.random.default_rng(0), verbose=False)


@pytest.mark.parametrize("min_lr,message", [
    (-1, r"min_lr must be a finite number >= 0, got -1"),
    (0.5, r"min_lr must be <= the optimizer's lr 0.1 .*got 0.5"),
    (float("nan"), r"min_lr must be a finite number, got nan"),
])
def test_cosine_refuses_min_lr_outside_zero_to_lr(min_lr, message):
    opt = SGD(Sequential([Dense(2, 2, rng=np.random.default_rng(0))]), lr=0.1)
    with pytest.raises(ValueError, match=message):
        CosineLR(opt, total_steps=10, min_lr=min_lr)
    assert CosineLR(opt, total_steps=10, min_lr=0.1).lr_at(5) == pytest.approx(0.1)


def test_predict_refuses_non_finite_input_and_maps_empty_to_empty():
    model = Sequential([Dense(2, 3, rng=np.random.default_rng(0))])
    x = np.ones((4, 2), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite values"):
        predict(model, x)
    empty = predict(model, np.zeros((0, 2), np.float32))
    assert empty.shape == (0,) and empty.dtype == np.int64
