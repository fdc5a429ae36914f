"""The Layer base and LAYERS: every layer class describes itself once, and the base's checks hold for each."""
import numpy as np
import pytest

from minicnn import Layer, Sequential
from minicnn.nn.gradcheck import CASES
from minicnn.nn.layer import LAYERS

BUILT = [(desc, kind, config) for desc, kind, config, _, _ in CASES]


def _plain(config):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def test_every_layer_class_is_a_layer_and_has_a_gradient_check():
    assert set(LAYERS) == {kind for _, kind, _ in BUILT}
    assert all(issubclass(cls, Layer) and cls.__name__ == name for name, cls in LAYERS.items())


@pytest.mark.parametrize("desc,kind,config", BUILT, ids=[d for d, _, _ in BUILT])
def test_config_rebuilds_the_layer_and_param_shapes_are_its_shapes(desc, kind, config):
    layer = LAYERS[kind].from_config(_plain(config), rng=np.random.default_rng(0), dtype=np.float64)
    again = LAYERS[kind].from_config(layer.config(), rng=np.random.default_rng(0), dtype=np.float64)
    assert again.config() == layer.config()
    for name, p in layer.params.items():
        np.testing.assert_array_equal(again.params[name], p)
    shapes = {name: a.shape for name, a in {**layer.params, **getattr(layer, "buffers", {})}.items()}
    assert LAYERS[kind].param_shapes(layer.config()) == shapes
    assert set(layer.grads) == set(layer.params)


@pytest.mark.parametrize("desc,kind,config", BUILT[::3], ids=[d for d, _, _ in BUILT[::3]])
def test_backward_before_forward_is_a_clear_error(desc, kind, config):
    layer = LAYERS[kind].from_config(_plain(config), rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=rf"^{kind}.backward called before forward$"):
        layer.backward(np.zeros((1, 1)))


def test_configs_name_only_constructor_arguments():
    with pytest.raises(ValueError, match=r"Conv2D lacks required arguments \['out_channels'\]"):
        LAYERS["Conv2D"].from_config({"in_channels": 1, "kernel_size": 3})
    with pytest.raises(ValueError, match=r"MaxPool2D has unknown arguments \['padding'\]; expected some of \['kernel_size', 'stride'\]"):
        LAYERS["MaxPool2D"].from_config({"kernel_size": 2, "padding": 1})


def test_a_layer_of_your_own_is_registered_unless_it_says_not_to():
    class Halve(Layer, register=False):
        def forward(self, x):
            return x / 2

        def backward(self, dout, need_dx=True):
            return dout / 2

    assert "Halve" not in LAYERS
    model = Sequential([Halve()])
    assert model.forward(np.ones((1, 2))).tolist() == [[0.5, 0.5]]
    assert "0: Halve" in model.summary((2,), file=None) and Halve().runs_on() == ""
