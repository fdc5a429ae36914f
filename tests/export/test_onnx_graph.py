"""ONNX export: the graph passes the full checker, ONNX Runtime computes minicnn's logits, the weights round-trip exactly."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, predict
from minicnn.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist, normalize, to_float32
from minicnn.export import OPSET, to_onnx
from tests.export.conftest import randomized

onnx = pytest.importorskip("onnx", reason="the ONNX export tests need the export extra: pip install 'minicnn-numpy[export]'")
ort = pytest.importorskip("onnxruntime", reason="the ONNX export tests need onnxruntime: pip install 'minicnn-numpy[export]'")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def assert_same_logits(expected, got):
    # float32 throughout on both sides: the sums are over at most 1568 products of numbers below ~10, so a
    # few eps * sum|terms| is below 1e-4; the issue asks 1e-5 on logits of size ~1-10, relative to their scale.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(expected).max())))
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_default_mnist_network_on_random_inputs_and_any_batch_size(mnist_model, tmp_path):
    path = tmp_path / "model.onnx"
    proto = to_onnx(mnist_model, (1, 28, 28), path, mean_std=(MNIST_MEAN, MNIST_STD), class_names=list("0123456789"))
    assert proto.opset_import[0].version == OPSET
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    rng = np.random.default_rng(1)
    for n in (1, 7, 32):
        x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        assert_same_logits(predict(mnist_model, x, return_logits=True), run_onnx(path, x))


def test_on_100_mnist_test_images_and_with_normalization_on_raw_pixels(mnist_model, mnist_root, tmp_path):
    _, _, images, _ = load_mnist(mnist_root, download=False)
    raw, standardized = to_float32(images[:100]), normalize(images[:100])   # (100, 1, 28, 28): [0, 1], and as in training
    expected = predict(mnist_model, standardized, return_logits=True)
    plain, with_norm = tmp_path / "plain.onnx", tmp_path / "norm.onnx"
    to_onnx(mnist_model, (1, 28, 28), plain)
    to_onnx(mnist_model, (1, 28, 28), with_norm, normalize=(MNIST_MEAN, MNIST_STD))
    assert_same_logits(expected, run_onnx(plain, standardized))
    assert_same_logits(expected, run_onnx(with_norm, raw))


def test_metadata_says_the_preprocessing_and_the_class_names(mnist_model, tmp_path):
    proto = to_onnx(mnist_model, (1, 28, 28), mean_std=(0.5, 0.25), class_names=["a", "b"])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["minicnn.mean"] == "0.5" and meta["minicnn.std"] == "0.25"
    assert meta["minicnn.class_names"] == '["a", "b"]'
    assert "(x - 0.5) / 0.25" in meta["minicnn.preprocessing"]


def test_weights_read_back_are_the_models_exactly(mnist_model, tmp_path):
    from onnx import numpy_helper
    path = tmp_path / "model.onnx"
    to_onnx(mnist_model, (1, 28, 28), path)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    for i, layer in enumerate(mnist_model.layers):
        for key, value in layer.params.items():
            np.testing.assert_array_equal(stored[f"{i}.{type(layer).__name__}.{key}"], value)
    assert len(stored) == sum(len(layer.params) for layer in mnist_model.layers)


def test_strided_padded_and_biasless_convolutions(tmp_path):
    rng = np.random.default_rng(2)
    model = randomized(Sequential([Conv2D(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), rng=rng), ReLU(),
                                   Conv2D(4, 5, 4, padding="same", bias=False, rng=rng), MaxPool2D(3, 2),
                                   Flatten(), Dense(5 * 2 * 4, 6, rng=rng)]), rng)
    path = tmp_path / "m.onnx"
    to_onnx(model, (3, 9, 7), path)
    x = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    assert_same_logits(predict(model, x, return_logits=True), run_onnx(path, x))


def test_a_layer_without_mapping_is_named():
    class Mystery:
        params, grads = {}, {}

        def forward(self, x):
            return x

        def backward(self, d):
            return d

        def output_shape(self, s):
            return s

    with pytest.raises(ValueError, match=r"layer 1 \(Mystery\) has no ONNX mapping"):
        to_onnx(Sequential([Flatten(), Mystery()]), (1, 2, 2))


def test_shapes_that_do_not_fit_are_refused_before_export(mnist_model):
    with pytest.raises(ValueError, match="shapes do not fit"):
        to_onnx(mnist_model, (1, 32, 32))


@pytest.mark.parametrize("which,shape", [("bn_model", (1, 28, 28)), ("every_layer_model", (3, 12, 10))])
def test_batchnorm_network_and_every_layer_type(which, shape, request, tmp_path):
    model = request.getfixturevalue(which)
    path = tmp_path / "m.onnx"
    proto = to_onnx(model, shape, path)
    ops = [n.op_type for n in proto.graph.node]
    assert "Dropout" not in ops and ops.count("BatchNormalization") == sum(
        type(layer).__name__.startswith("BatchNorm") for layer in model.layers)
    x = np.random.default_rng(6).standard_normal((9,) + shape).astype(np.float32)
    assert_same_logits(predict(model, x, return_logits=True), run_onnx(path, x))


def test_batchnorm_network_on_100_mnist_images_and_raw_pixels(bn_model, mnist_root, tmp_path):
    _, _, images, _ = load_mnist(mnist_root, download=False)
    expected = predict(bn_model, normalize(images[:100]), return_logits=True)
    path = tmp_path / "norm.onnx"
    to_onnx(bn_model, (1, 28, 28), path, normalize=(MNIST_MEAN, MNIST_STD))
    assert_same_logits(expected, run_onnx(path, to_float32(images[:100])))


def test_every_layer_type_is_in_the_model():
    """The every-layer model holds each class of LAYERS, so a new layer without an ONNX or PyTorch mapping fails here."""
    from minicnn.nn.layer import LAYERS
    from tests.export.conftest import EVERY_LAYER
    assert {layer["type"] for layer in EVERY_LAYER} == set(LAYERS)
