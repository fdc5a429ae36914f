"""``python -m minicnn export``: files written, existing files refused, bad checkpoints one line and exit 2."""
import json

import numpy as np
import pytest

from minicnn.__main__ import main
from minicnn.training.architectures import mnist_cnn
from minicnn.training.checkpoint import save_checkpoint
from tests import crafted

pytest.importorskip("onnx", reason="needs the export extra: pip install 'minicnn-numpy[export]'")
pytest.importorskip("safetensors", reason="needs the export extra: pip install 'minicnn-numpy[export]'")


@pytest.fixture
def checkpoint(mnist_model, tmp_path):
    """Saved as experiments/train_mnist.py saves: with its config, which names the data set."""
    return save_checkpoint(tmp_path / "checkpoint.npz", model=mnist_model, architecture=mnist_cnn(),
                           extra={"config": json.dumps({"dataset": "mnist"})})


def test_writes_onnx_and_safetensors_and_prints_the_torch_code(checkpoint, tmp_path, capsys):
    onnx_path, torch_path = tmp_path / "m.onnx", tmp_path / "m.safetensors"
    assert main(["export", str(checkpoint), "--onnx", str(onnx_path), "--torch", str(torch_path)]) == 0
    out = capsys.readouterr().out
    assert onnx_path.stat().st_size > 100_000 and torch_path.stat().st_size > 100_000
    assert "ONNX opset 17" in out and "nn.Sequential(" in out and "load_file('m.safetensors')" in out


def test_with_normalization_and_code_to_a_file(checkpoint, tmp_path, capsys):
    code = tmp_path / "load.py"
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"), "--with-normalization",
                 "--torch", str(tmp_path / "m.safetensors"), "--print-code", str(code)]) == 0
    assert "takes raw [0, 1] pixels" in capsys.readouterr().out
    assert code.read_text().startswith("import torch\n")


def test_an_existing_output_is_refused_unless_overwrite(checkpoint, tmp_path, capsys):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"mine")
    assert main(["export", str(checkpoint), "--onnx", str(target)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert target.read_bytes() == b"mine"
    assert main(["export", str(checkpoint), "--onnx", str(target), "--overwrite"]) == 0
    assert target.stat().st_size > 100_000


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_a_checkpoint_that_does_not_load_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    assert main(["export", str(path), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn export: error:") and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_nothing_to_do_is_an_error(checkpoint, capsys):
    assert main(["export", str(checkpoint)]) == 2
    assert "give --onnx FILE and/or --torch FILE" in capsys.readouterr().err


# ------------------------------------------------------------ issue 24

def test_nan_weights_are_refused_naming_the_entry(checkpoint, tmp_path, capsys):
    entries = crafted.read_entries(checkpoint)
    entries["model/0.W"][0, 0, 0, 0] = np.nan
    crafted.rewrite(checkpoint, entries)
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entry 'model/0.W' holds 1 NaN or infinite values out of 144" in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_checkpoint_without_a_config_is_refused_naming_the_options_then_exported_with_them(tmp_path, capsys):
    """A 16x16, 4-class model saved by save_checkpoint alone: export assumes nothing (it used to say MNIST)."""
    path = crafted.tiny_checkpoint(tmp_path / "c.npz")
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(path), "--onnx", str(onnx_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not record its input shape, normalisation mean, normalisation std, class " \
        "names" in err and "--input-shape C,H,W (e.g. --input-shape 1,16,16)" in err and "--classes" in err
    given = ["--mean", "0.5", "--std", "0.25", "--classes", "a,b,c,d"]
    assert main(["export", str(path), "--onnx", str(onnx_path), "--input-shape", "1,28,28", *given]) == 2
    assert "cannot take inputs of shape 1,28,28: layer 3 (Dense)" in capsys.readouterr().err
    assert main(["export", str(path), "--onnx", str(onnx_path), "--input-shape", "1,16,16", *given[:-1], "a,b"]) == 2
    assert "outputs of shape (4,) per input, but there are 2 class names" in capsys.readouterr().err
    assert not onnx_path.exists()
    assert main(["export", str(path), "--onnx", str(onnx_path), "--input-shape", "1,16,16", *given]) == 0
    assert "input 'input' (N, 1, 16, 16)" in capsys.readouterr().out
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(meta["minicnn.class_names"]) == ["a", "b", "c", "d"], meta


def test_an_option_contradicting_the_checkpoint_is_refused(checkpoint, tmp_path, capsys):
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"), "--input-shape", "1,16,16"]) == 2
    assert "records input shape 1,28,28; --input-shape 1,16,16 contradicts it" in capsys.readouterr().err
