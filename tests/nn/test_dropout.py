"""Dropout: the kept fraction and the scaling, the same mask in backward, a seed gives the same masks, identity in eval."""
import numpy as np
import pytest

from minicnn import Dropout
from minicnn.nn.gradcheck import LAYER_TOL, ReseededDropout, check_layer
from minicnn.nn.ops import use_engine

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_kept_fraction_and_scaling(p):
    layer = Dropout(p, rng=np.random.default_rng(0))
    x = np.ones((200, 500), np.float32)
    out = layer.forward(x)
    kept = out != 0
    n = x.size
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)         # five standard deviations
    np.testing.assert_allclose(out[kept], np.float32(1 / (1 - p)), rtol=1e-6)
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, np.where(kept, dout * np.float32(1 / (1 - p)), 0))


def test_same_seed_same_masks_and_both_engines_agree():
    x = np.random.default_rng(2).standard_normal((4, 3, 5, 6))
    runs = []
    for engine in ("textbook", "fast"):
        with use_engine(engine):
            layer = Dropout(0.3, rng=np.random.default_rng(7))
            runs.append([layer.forward(x).copy() for _ in range(3)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[0][1])                         # a new mask at every step


def test_eval_mode_and_p_zero_are_the_identity():
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), x)
    dout = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dout), dout)
    zero = Dropout(0.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(zero.forward(x), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    layer = Dropout(0.4, rng=np.random.default_rng(4))
    x = np.ones((3, 2, 4, 4), dtype)
    out = layer.forward(x)
    assert out.dtype == dtype and layer.backward(np.ones_like(out)).dtype == dtype
    assert layer.backward(np.ones_like(out), need_dx=False) is None


def test_gradient_with_the_mask_frozen():
    rng = np.random.default_rng(5)
    assert check_layer(ReseededDropout(0.4, 1), rng.standard_normal((4, 3, 2, 5)), rng=rng)["dx"] < LAYER_TOL


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), "0.5"])
def test_p_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=r"Dropout p must be"):
        Dropout(p)


def test_bad_rng_and_input():
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        Dropout(0.5, rng=3)
    with pytest.raises(ValueError, match="floating-point NumPy array, got int64"):
        Dropout(0.5).forward(np.zeros((2, 2), np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5).backward(np.zeros((2, 2)))
