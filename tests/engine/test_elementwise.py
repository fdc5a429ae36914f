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


def test_new_elementwise_layers_agree_with_the_textbook_on_both_layouts():
    from minicnn.nn import Dropout, LeakyReLU, Sigmoid, Tanh, use_engine
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        x = (3 * rng.standard_normal((2, 3, 4, 5))).astype(dtype)
        dout = rng.standard_normal(x.shape).astype(dtype)
        for make in (lambda: LeakyReLU(0.2), Tanh, Sigmoid, lambda: Dropout(0.4, rng=np.random.default_rng(1))):
            results = {}
            for engine in ("fast", "textbook"):
                for layout, inp in (("nchw", x), ("channels_last", channels_last(x))):
                    with use_engine(engine):
                        layer = make()
                        out = layer.forward(inp)
                        dx = layer.backward(dout)
                    assert out.dtype == dtype and dx.dtype == dtype
                    if engine == "fast":
                        assert out.strides == inp.strides                 # the fast output keeps the layout
                    results[engine, layout] = out.copy(), dx.copy()
            ref_out, ref_dx = results["textbook", "nchw"]
            tol = 4 * np.finfo(dtype).eps
            for out, dx in results.values():
                np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
                np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol * np.abs(dout).max())
