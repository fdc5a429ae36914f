"""BatchNorm2D and BatchNorm1D: the loops of minicnn.nn.reference, running statistics by hand, eval mode, gradients, errors."""
import numpy as np
import pytest

from minicnn import BatchNorm1D, BatchNorm2D
from minicnn.nn.gradcheck import LAYER_TOL, _randomised, check_layer
from minicnn.nn.reference import batchnorm_naive

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("shape", [(3, 2, 5, 7), (2, 5, 1, 3), (7, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_forward_matches_the_loops(shape, training):
    rng = np.random.default_rng(0)
    layer = _randomised((BatchNorm2D if len(shape) == 4 else BatchNorm1D)(shape[1], dtype=np.float64), rng, training)
    rm, rv = layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy()
    x = 2 + 3 * rng.standard_normal(shape)
    inputs = [x, channels_last(x)] if len(shape) == 4 else [x]
    for inp in inputs:
        layer.buffers["running_mean"][...], layer.buffers["running_var"][...] = rm, rv
        out = layer.forward(inp)
        expected, _, _ = batchnorm_naive(x, layer.params["gamma"], layer.params["beta"], 1e-5,
                                         *(() if training else (rm, rv)))
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_running_statistics_after_three_steps_by_hand():
    rng = np.random.default_rng(1)
    layer = BatchNorm2D(2, momentum=0.25, dtype=np.float64)
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = 1 + 2 * rng.standard_normal((4, 2, 3, 3))
        layer.forward(x)
        values = x.transpose(1, 0, 2, 3).reshape(2, -1)            # (C, n) with n = 36
        n = values.shape[1]
        batch_mean = values.sum(axis=1) / n
        unbiased = ((values - batch_mean[:, None]) ** 2).sum(axis=1) / (n - 1)
        mean, var = 0.75 * mean + 0.25 * batch_mean, 0.75 * var + 0.25 * unbiased
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-12)


def test_eval_mode_uses_running_statistics_and_leaves_them_alone():
    layer = BatchNorm1D(2, dtype=np.float64)
    layer.buffers["running_mean"][...] = [1.0, -2.0]
    layer.buffers["running_var"][...] = [4.0, 0.25]
    layer.params["gamma"][...] = [2.0, 1.0]
    layer.params["beta"][...] = [0.5, 0.0]
    layer.training = False
    x = np.array([[3.0, -2.0], [1.0, -1.0]])
    out = layer.forward(x)
    eps = 1e-5
    np.testing.assert_allclose(out, [[2 * 2 / np.sqrt(4 + eps) + 0.5, 0.0], [0.5, 1 / np.sqrt(0.25 + eps)]], rtol=1e-12)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [1.0, -2.0])
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, np.broadcast_to([2 / np.sqrt(4 + eps), 1 / np.sqrt(0.25 + eps)], x.shape), rtol=1e-12)
    layer.forward(x[:1])                                            # one example is fine in eval mode


def test_training_normalises_each_channel():
    rng = np.random.default_rng(2)
    out = BatchNorm2D(3).forward((5 + 4 * rng.standard_normal((8, 3, 6, 6))).astype(np.float32))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)


@pytest.mark.parametrize("cls,shape", [(BatchNorm2D, (3, 2, 3, 4)), (BatchNorm1D, (5, 3))])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_gradients(cls, shape, training, affine):
    rng = np.random.default_rng(3)
    layer = _randomised(cls(shape[1], affine=affine, dtype=np.float64), rng, training)
    errors = check_layer(layer, rng.standard_normal(shape), rng=rng)
    assert set(errors) == ({"dx", "gamma", "beta"} if affine else {"dx"})
    assert max(errors.values()) < LAYER_TOL


def test_gradient_check_catches_the_eval_backward_used_in_training():
    rng = np.random.default_rng(4)
    layer = _randomised(BatchNorm2D(2, dtype=np.float64), rng)
    right = layer.backward

    def wrong(dout, need_dx=True):      # forgets that the batch statistics depend on x
        cache = layer._cache
        saved = cache.saved
        if hasattr(saved, "training"):  # textbook, fast: the eval branch of the backward
            saved = saved._replace(training=False)
        else:                           # loops: the eval loops, given the batch's own statistics
            saved = saved._replace(running=(saved.x.mean(axis=(0, 2, 3)), saved.x.var(axis=(0, 2, 3))))
        layer._cache = cache._replace(saved=saved)
        return right(dout, need_dx)
    layer.backward = wrong
    assert check_layer(layer, rng.standard_normal((3, 2, 2, 3)), rng=rng)["dx"] > 1e-2


def test_affine_false_has_no_parameters():
    layer = BatchNorm2D(4, affine=False)
    assert layer.params == {} and layer.grads == {}
    assert set(layer.buffers) == {"running_mean", "running_var"}
    out = layer.forward(np.random.default_rng(5).standard_normal((2, 4, 3, 3)).astype(np.float32))
    assert layer.backward(np.ones_like(out)).shape == out.shape


def test_defaults_and_shapes():
    layer = BatchNorm2D(3)
    assert layer.training is True and layer.eps == 1e-5 and layer.momentum == 0.1
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3, np.float32))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3, np.float32))
    assert layer.buffers["running_mean"].dtype == np.float32
    assert layer.output_shape((3, 5, 4)) == (3, 5, 4)
    assert BatchNorm1D(6).output_shape((6,)) == (6,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_dtype_preserved(dtype, training):
    rng = np.random.default_rng(6)
    for layer, shape in ((BatchNorm2D(3), (2, 3, 4, 4)), (BatchNorm1D(3), (4, 3))):
        layer.training = training
        x = rng.standard_normal(shape).astype(dtype)
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(out))
        assert out.dtype == dtype and dx.dtype == dtype
        assert layer.grads["gamma"].dtype == np.float32 and layer.buffers["running_var"].dtype == np.float32


def test_need_dx_false_still_fills_the_gradients():
    rng = np.random.default_rng(7)
    layer = BatchNorm2D(2, dtype=np.float64)
    x, dout = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    layer.forward(x)
    dx = layer.backward(dout)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    assert layer.backward(dout, need_dx=False) is None and dx is not None
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, grads[k], rtol=1e-12)


@pytest.mark.parametrize("make, x, message", [
    (lambda: BatchNorm2D(3), np.zeros((2, 4, 3, 3), np.float32), r"expected input of shape \(N, 3, H, W\).*4 channels"),
    (lambda: BatchNorm2D(3), np.zeros((2, 3), np.float32), r"4 dimensions"),
    (lambda: BatchNorm1D(3), np.zeros((2, 3, 1, 1), np.float32), r"\(N, 3\) \(2 dimensions\)"),
    (lambda: BatchNorm2D(3), np.zeros((2, 3, 2, 2), np.int64), r"floating-point"),
    (lambda: BatchNorm1D(3), np.zeros((1, 3), np.float32), r"more than one value per channel.*\(1, 3\)"),
])
def test_bad_inputs(make, x, message):
    with pytest.raises(ValueError, match=message):
        make().forward(x)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_features": 0}, "num_features must be a positive int, got 0"),
    ({"num_features": 2, "eps": 0}, r"eps must be a finite number > 0, got 0"),
    ({"num_features": 2, "momentum": 1.5}, r"momentum must be in \[0, 1\], got 1.5"),
    ({"num_features": 2, "affine": "yes"}, "affine must be True or False, got 'yes'"),
    ({"num_features": 2, "dtype": np.int32}, "floating NumPy dtype"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm2D(**kwargs)


def test_backward_errors():
    layer = BatchNorm1D(2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 2), np.float32))
    layer.forward(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected dout of the input's shape \(3, 2\), got \(2, 2\)"):
        layer.backward(np.zeros((2, 2), np.float32))
