"""PyTorch export: names and layouts of nn.Sequential, safetensors that load without running code, identical logits."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, predict
from minicnn.export import to_torch_state_dict, torch_code
from tests.export.conftest import randomized


def test_names_and_layouts_are_those_of_nn_sequential(mnist_model):
    state = to_torch_state_dict(mnist_model)
    assert sorted(state) == ["0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight", "9.bias", "9.weight"]
    np.testing.assert_array_equal(state["0.weight"], mnist_model.layers[0].params["W"])        # (F, C, KH, KW) as is
    np.testing.assert_array_equal(state["7.weight"], mnist_model.layers[7].params["W"].T)      # Linear is (out, in)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in state.values())


def test_printed_code_names_every_layer_with_its_arguments(mnist_model):
    code = torch_code(mnist_model, "w.safetensors")
    assert ("nn.Conv2d(in_channels=1, out_channels=16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=True),"
            "  # 0") in code
    assert "nn.Linear(in_features=1568, out_features=128),  # 7" in code
    assert "model.load_state_dict(load_file('w.safetensors'))" in code
    assert "torch.load" not in code


def test_safetensors_file_reads_back_exactly(mnist_model, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs the export extra: pip install 'minicnn-numpy[export]'")
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_numpy.save(to_torch_state_dict(mnist_model)))
    back = safetensors_numpy.load_file(str(path))
    for name, value in to_torch_state_dict(mnist_model).items():
        np.testing.assert_array_equal(back[name], value)


def _torch_logits(model, x, tmp_path):
    torch = pytest.importorskip("torch", reason="the PyTorch comparison runs only where torch is installed (optional)")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_numpy.save(to_torch_state_dict(model)))
    namespace = {}
    code = torch_code(model, path)
    assert "torch.load" not in code
    exec(compile(code, "printed code", "exec"), namespace)      # the lines the command prints, as a user runs them
    with torch.no_grad():
        return namespace["model"](torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("build", ["mnist", "strided"])
def test_printed_code_and_weights_give_minicnns_logits_in_torch(mnist_model, build, tmp_path):
    rng = np.random.default_rng(5)
    if build == "mnist":
        model, shape = mnist_model, (1, 28, 28)
    else:
        model = randomized(Sequential([Conv2D(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), rng=rng), ReLU(),
                                       Conv2D(4, 5, 4, padding="same", bias=False, rng=rng), MaxPool2D(3, 2),
                                       Flatten(), Dense(40, 6, rng=rng)]), rng)
        shape = (3, 9, 7)
    x = rng.standard_normal((8,) + shape).astype(np.float32)
    expected = predict(model, x, return_logits=True)
    got = _torch_logits(model, x, tmp_path)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize("which,shape", [("bn_model", (1, 28, 28)), ("every_layer_model", (3, 12, 10))])
def test_batchnorm_and_every_layer_type_in_torch(which, shape, request, tmp_path):
    model = request.getfixturevalue(which)
    state = to_torch_state_dict(model)
    assert all(f"{i}.running_var" in state and f"{i}.num_batches_tracked" in state
               for i, layer in enumerate(model.layers) if type(layer).__name__.startswith("BatchNorm"))
    x = np.random.default_rng(7).standard_normal((6,) + shape).astype(np.float32)
    expected = predict(model, x, return_logits=True)
    got = _torch_logits(model, x, tmp_path)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(expected).max())))
