"""The contract every layer keeps: gradients checked in float64, dtype in = dtype out, documented shapes,
He initialisation, backward before forward, need_dx=False, and a clear ValueError for every bad input."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from minicnn.nn.gradcheck import LAYER_TOL, check_layer, distinct_values

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


def test_relu_dense_flatten_gradients():
    rng = np.random.default_rng(6)
    assert check_layer(ReLU(), distinct_values((3, 2, 4, 5), rng, 0.1), rng=rng)["dx"] < LAYER_TOL
    assert check_layer(Flatten(), rng.standard_normal((3, 2, 3, 4)), rng=rng)["dx"] < LAYER_TOL
    errors = check_layer(Dense(7, 5, rng=rng, dtype=np.float64), rng.standard_normal((4, 7)), rng=rng)
    assert set(errors) == {"dx", "W", "b"} and max(errors.values()) < LAYER_TOL


def test_gradient_check_catches_a_wrong_backward():
    rng = np.random.default_rng(7)
    layer = Conv2D(2, 2, 3, padding=1, rng=rng, dtype=np.float64)
    right = layer.backward
    layer.backward = lambda dout: right(dout) * 1.01  # a 1% mistake in dx
    assert check_layer(layer, rng.standard_normal((2, 2, 5, 5)), rng=rng)["dx"] > 1e-3


def _all_layers(dtype):
    rng = np.random.default_rng(8)
    return [(Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype), (2, 2, 6, 6)), (ReLU(), (2, 3, 4, 4)),
            (MaxPool2D(2), (2, 3, 4, 4)), (Flatten(), (2, 3, 2, 2)), (Dense(12, 5, rng=rng, dtype=dtype), (2, 12))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_in_forward_backward_and_grads(dtype):
    rng = np.random.default_rng(9)
    for layer, shape in _all_layers(dtype):
        x = rng.standard_normal(shape).astype(dtype)
        out = layer.forward(x)
        assert out.dtype == dtype, type(layer).__name__
        dx = layer.backward(np.ones_like(out))
        assert dx.dtype == dtype and dx.shape == x.shape, type(layer).__name__
        for name, g in layer.grads.items():
            assert g.dtype == dtype and g.shape == layer.params[name].shape


def test_documented_shapes_and_output_shape():
    rng = np.random.default_rng(10)
    conv = Conv2D(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), rng=rng)
    assert conv.params["W"].shape == (8, 3, 3, 5) and conv.params["b"].shape == (8,)
    out = conv.forward(rng.standard_normal((4, 3, 11, 10)).astype(np.float32))
    assert out.shape == (4, 8, (11 + 2 - 3) // 2 + 1, (10 + 4 - 5) // 1 + 1) == (4,) + conv.output_shape((3, 11, 10))
    dense = Dense(6, 2, rng=rng)
    assert dense.params["W"].shape == (6, 2) and dense.params["b"].shape == (2,)
    pool = MaxPool2D(3, 2)
    assert pool.forward(np.zeros((1, 1, 7, 8), np.float32)).shape == (1, 1, 3, 3) == (1,) + pool.output_shape((1, 7, 8))


def test_he_initialisation_scale_and_reproducibility():
    a = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    b = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert a.params["W"].dtype == np.float32 and not a.params["b"].any()
    assert abs(a.params["W"].std() - np.sqrt(2 / (16 * 9))) < 0.01
    d = Dense(1000, 500, rng=np.random.default_rng(1))
    assert abs(d.params["W"].std() - np.sqrt(2 / 1000)) < 0.002


@pytest.mark.parametrize("make", [lambda: Conv2D(1, 1, 3, rng=np.random.default_rng(0)), ReLU, lambda: MaxPool2D(2),
                                  Flatten, lambda: Dense(3, 2, rng=np.random.default_rng(0))])
def test_backward_before_forward_raises(make):
    with pytest.raises(RuntimeError, match="before forward"):
        make().backward(np.ones((1, 1, 1, 1), np.float32))


def test_other_layers_reject_bad_input():
    with pytest.raises(ValueError, match=r"in_channels must be a positive int, got 0"):
        Conv2D(0, 1, 3)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match=r"stride must be >= 1"):
        MaxPool2D(2, stride=0)
    with pytest.raises(ValueError, match=r"kernel 3x3 is larger than the input 2x5"):
        MaxPool2D(3).forward(np.zeros((1, 1, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) \(4 dimensions\), got shape \(5, 5\)"):
        MaxPool2D(2).forward(np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense expected input of shape \(N, 4\), got \(2, 5\)"):
        Dense(4, 3, rng=np.random.default_rng(0)).forward(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense expected input of shape \(N, 4\) \(2 dimensions\), got shape \(2, 2, 2\)"):
        Dense(4, 3, rng=np.random.default_rng(0)).forward(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator"):
        Dense(4, 3, rng=42)
    with pytest.raises(ValueError, match=r"Flatten expected an array of shape \(N, ...\)"):
        Flatten().forward(np.zeros(3, np.float32))


@pytest.mark.parametrize("make, shape", [
    (lambda rng: Conv2D(1, 3, 3, padding=1, rng=rng), (2, 1, 6, 7)),            # im2col path (C < 4)
    (lambda rng: Conv2D(5, 3, 3, padding=1, rng=rng), (2, 5, 6, 7)),            # shifted-rows path (stride 1, C >= 4)
    (lambda rng: Conv2D(5, 3, (2, 3), stride=2, bias=False, rng=rng), (2, 5, 7, 8)),
    (lambda rng: Dense(6, 4, rng=rng), (3, 6)),
    (lambda rng: ReLU(), (2, 3, 4, 5)),
    (lambda rng: MaxPool2D(2), (2, 3, 4, 6)),
    (lambda rng: MaxPool2D(3, stride=2), (2, 3, 7, 7)),
    (lambda rng: Flatten(), (2, 3, 4, 5)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_without_dx_fills_the_same_grads_and_returns_none(make, shape, dtype):
    rng = np.random.default_rng(3)
    layer = make(rng)
    for name in layer.params:
        layer.params[name] = (layer.params[name] + rng.standard_normal(layer.params[name].shape)).astype(dtype)
        layer.grads[name] = np.zeros_like(layer.params[name])
    x = rng.standard_normal(shape).astype(dtype)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout).copy()
    full = {name: g.copy() for name, g in layer.grads.items()}
    for g in layer.grads.values():
        g.fill(np.nan)
    assert layer.backward(dout, need_dx=False) is None
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(g, full[name])
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(layer.backward(dout, need_dx=True), dx)   # dx again after a backward without it


def test_flatten_maps_an_empty_batch_to_an_empty_batch():
    layer = Flatten()
    out = layer.forward(np.zeros((0, 3, 4, 5), np.float32))
    assert out.shape == (0, 60) and out.dtype == np.float32
    assert layer.backward(np.zeros((0, 60), np.float32)).shape == (0, 3, 4, 5)
