"""Architectures as JSON: spec -> Sequential -> spec round trips, and bad specs are refused."""
import json

import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sequential
from minicnn.nn.layer import LAYERS
from minicnn.training import architectures


def test_default_mnist_network_shapes_and_round_trip():
    spec = architectures.mnist_cnn()
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    out = model.forward(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert out.shape == (2, 10) and out.dtype == np.float32
    assert model.layers[0].params["W"].shape == (16, 1, 3, 3)
    text = architectures.to_json(spec)
    assert architectures.to_json(model) == text
    assert architectures.to_json(architectures.build_model(text, rng=np.random.default_rng(1))) == text


def test_model_spec_reads_a_hand_built_model():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(3, 5, (3, 2), stride=2, padding=(1, 0), bias=False, rng=rng), ReLU(),
                        MaxPool2D(3, stride=1), Flatten(), Dense(20, 4, rng=rng)])
    spec = architectures.model_spec(model)
    assert spec[0] == {"type": "Conv2D", "in_channels": 3, "out_channels": 5, "kernel_size": [3, 2],
                       "stride": [2, 2], "padding": [1, 0], "bias": False}
    assert spec[2] == {"type": "MaxPool2D", "kernel_size": [3, 3], "stride": [1, 1]}
    rebuilt = architectures.build_model(json.loads(json.dumps(spec)), rng=rng)
    assert architectures.model_spec(rebuilt) == spec
    assert "b" not in rebuilt.layers[0].params


def test_same_padding_with_even_kernel_survives():
    spec = [{"type": "Conv2D", "in_channels": 1, "out_channels": 2, "kernel_size": 4, "padding": "same"}]
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    assert architectures.model_spec(model)[0]["padding"] == "same"
    assert architectures.build_model(architectures.to_json(spec)).layers[0].padding == model.layers[0].padding


def test_equal_networks_give_equal_json_and_different_ones_do_not():
    a = architectures.to_json(architectures.mnist_cnn(channels=(8, 16)))
    b = architectures.to_json(architectures.mnist_cnn(channels=(8, 16)))
    c = architectures.to_json(architectures.mnist_cnn(channels=(8, 32)))
    assert a == b and a != c
    assert architectures.describe(c).startswith("Conv2D(1->8, 3x3) MaxPool2D(2x2) ReLU Conv2D(8->32, 3x3)")


def test_build_uses_dtype_and_rng():
    spec = architectures.mnist_cnn(channels=(2, 2), hidden=4)
    m1 = architectures.build_model(spec, rng=np.random.default_rng(5), dtype=np.float64)
    m2 = architectures.build_model(spec, rng=np.random.default_rng(5), dtype=np.float64)
    assert m1.layers[0].params["W"].dtype == np.float64
    np.testing.assert_array_equal(m1.layers[7].params["W"], m2.layers[7].params["W"])


@pytest.mark.parametrize("spec, message", [
    ([], "non-empty list"),
    ("not json", "not valid JSON"),
    ('{"type": "ReLU"}', "non-empty list"),
    ([{"type": "Conv3D"}], "layer 0 of the architecture must be a dict with 'type'"),
    ([{"type": "ReLU", "inplace": True}], r"unknown arguments \['inplace'\]"),
    ([{"type": "Dense", "in_features": 3}], r"lacks required arguments \['out_features'\]"),
    (["ReLU"], "must be a dict"),
])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        architectures.build_model(spec)


def test_foreign_layers_cannot_be_described():
    class Dropout:
        params, grads = {}, {}
        forward = backward = staticmethod(lambda x: x)

    with pytest.raises(ValueError, match="layer 1 is a Dropout"):
        architectures.model_spec(Sequential([ReLU(), Dropout()]))


def test_pooling_before_relu_gives_the_same_outputs_and_gradients():
    """The default network pools before its ReLUs; swapping them back changes nothing, to the bit."""
    spec = architectures.mnist_cnn(channels=(4, 6), hidden=8)
    swapped = [dict(layer) for layer in spec]
    for i in (1, 4):
        assert (swapped[i]["type"], swapped[i + 1]["type"]) == ("MaxPool2D", "ReLU")
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    a = architectures.build_model(spec, rng=np.random.default_rng(0))
    b = architectures.build_model(swapped, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(np.float32)
    out_a, out_b = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(out_a, out_b)
    dout = np.random.default_rng(2).standard_normal(out_a.shape).astype(np.float32)
    np.testing.assert_array_equal(a.backward(dout), b.backward(dout))
    for (name, _, ga), (_, _, gb) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(ga, gb, err_msg=name)


def test_every_new_layer_round_trips_through_json():
    spec = [{"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
            {"type": "BatchNorm2D", "num_features": 4, "momentum": 0.2},
            {"type": "LeakyReLU", "negative_slope": 0.2},
            {"type": "AvgPool2D", "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "Tanh"}, {"type": "GlobalAvgPool2D"},
            {"type": "BatchNorm1D", "num_features": 4, "eps": 1e-3, "affine": False},
            {"type": "Dropout", "p": 0.25}, {"type": "Sigmoid"},
            {"type": "Dense", "in_features": 4, "out_features": 3}]
    assert set(LAYERS) == {s["type"] for s in spec} | {"ReLU", "MaxPool2D", "Flatten"}
    model = architectures.build_model(spec, rng=np.random.default_rng(0), dtype=np.float64)
    assert model.forward(np.zeros((2, 1, 8, 8))).shape == (2, 3)
    text = architectures.to_json(model)
    rebuilt = architectures.build_model(text, rng=np.random.default_rng(0), dtype=np.float64)
    assert architectures.to_json(rebuilt) == text
    canonical = json.loads(text)
    assert canonical[1] == {"type": "BatchNorm2D", "num_features": 4, "eps": 1e-5, "momentum": 0.2, "affine": True}
    assert canonical[3] == {"type": "AvgPool2D", "kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]}
    assert canonical[7] == {"type": "Dropout", "p": 0.25} and canonical[2]["negative_slope"] == 0.2
    assert rebuilt.layers[1].buffers["running_var"].dtype == np.float64 and not rebuilt.layers[6].affine
    assert architectures.describe(text).startswith("Conv2D(1->4, 3x3) BatchNorm2D(4) LeakyReLU AvgPool2D(3x3)")


def test_dropout_masks_come_from_the_rng_given_to_build_model():
    spec = [{"type": "Dropout", "p": 0.5}]
    x = np.ones((4, 50), np.float32)
    a = architectures.build_model(spec, rng=np.random.default_rng(3)).forward(x)
    b = architectures.build_model(spec, rng=np.random.default_rng(3)).forward(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, architectures.build_model(spec, rng=np.random.default_rng(4)).forward(x))


def test_fashion_cnn_normalizes_each_conv_and_drops_out_before_the_last_dense():
    spec = architectures.fashion_cnn(channels=(4, 8), hidden=16, dropout=0.5)
    assert [layer["type"] for layer in spec] == [
        "Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU", "Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU", "Flatten",
        "Dense", "ReLU", "Dropout", "Dense"]
    assert [layer.get("bias") for layer in spec if layer["type"] == "Conv2D"] == [False, False]
    assert [layer["num_features"] for layer in spec if layer["type"] == "BatchNorm2D"] == [4, 8]
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    assert model.num_params() == 9 * 4 + 2 * 4 + 9 * 4 * 8 + 2 * 8 + (8 * 49 * 16 + 16) + (16 * 10 + 10)
    assert architectures.to_json(architectures.from_json(architectures.to_json(model))) == architectures.to_json(spec)
    assert "Dropout" not in [layer["type"] for layer in architectures.fashion_cnn()]
    # mnist_cnn takes the same sizes; its dropout is off unless asked for
    assert architectures.mnist_cnn(dropout=0.0) == architectures.mnist_cnn()
    assert [layer["type"] for layer in architectures.mnist_cnn(dropout=0.3)][-2:] == ["Dropout", "Dense"]
    assert set(architectures.ARCHITECTURES) == {"mnist_cnn", "fashion_cnn"}


def test_a_third_channel_count_adds_a_normalized_conv_on_the_7x7_maps():
    spec = architectures.fashion_cnn(channels=(4, 8, 6), hidden=16)
    assert [layer["type"] for layer in spec] == [
        "Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU", "Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU",
        "Conv2D", "BatchNorm2D", "ReLU", "Flatten", "Dense", "ReLU", "Dense"]
    assert spec[8] == {"type": "Conv2D", "in_channels": 8, "out_channels": 6, "kernel_size": 3, "padding": "same",
                       "bias": False}
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert model.num_params() == 9 * 4 + 2 * 4 + 9 * 4 * 8 + 2 * 8 + 9 * 8 * 6 + 2 * 6 + (6 * 49 * 16 + 16) + 170
    assert architectures.fashion_cnn(channels=(4, 8)) == architectures.fashion_cnn(channels=(4, 8), hidden=128)
    with pytest.raises(ValueError, match=r"fashion_cnn takes two or three channel counts, got \(4,\)"):
        architectures.fashion_cnn(channels=(4,))
    with pytest.raises(ValueError, match=r"mnist_cnn takes two channel counts, got \(4, 8, 6\)"):
        architectures.mnist_cnn(channels=(4, 8, 6))


def test_a_new_layer_class_needs_no_edit_here(monkeypatch):
    """Architectures read layers through LAYERS and config(): a layer class of your own round-trips as it is."""
    class Scale(Layer, register=False):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor

        def config(self):
            return {"factor": self.factor}

        def forward(self, x):
            return x * self.factor

        def backward(self, dout, need_dx=True):
            return dout * self.factor

    monkeypatch.setitem(LAYERS, "Scale", Scale)
    spec = [{"type": "Scale", "factor": 3.0}, {"type": "ReLU"}]
    model = architectures.build_model(spec)
    assert isinstance(model.layers[0], Scale) and model.layers[0].factor == 3.0
    assert json.loads(architectures.to_json(model)) == spec
    with pytest.raises(ValueError, match=r"layer 0 of the architecture: Scale has unknown arguments \['size'\]"):
        architectures.build_model([{"type": "Scale", "size": 1}])
