"""The fast ReLU and Flatten's dx keep the memory layout they were given."""
import numpy as np

from minicnn.nn import Flatten, ReLU


def channels_last(x):
    """The same values as x, stored (N, H, W, C) in memory: what the layers pass each other."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def test_flatten_hands_dx_back_in_the_layout_of_x():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 4, 5))
    for inp in (x, channels_last(x)):
        layer = Flatten()
        out = layer.forward(inp)
        np.testing.assert_array_equal(out, x.reshape(2, -1))      # C order, whatever the memory layout
        dx = layer.backward(out * 2)
        np.testing.assert_array_equal(dx, 2 * x)
        assert dx.strides == inp.strides


def test_relu_on_both_layouts_and_dtypes():
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        for inp in (x, channels_last(x)):
            layer = ReLU()
            out = layer.forward(inp)
            dx = layer.backward(np.ones_like(x))
            assert out.dtype == dtype and dx.dtype == dtype
            np.testing.assert_array_equal(out, np.where(x > 0, x, 0))
            np.testing.assert_array_equal(dx, (x > 0).astype(dtype))
