"""``python -m minicnn export``: files written, existing files refused, bad checkpoints one line and exit 2."""
import json

import pytest

from minicnn.__main__ import main
from minicnn.training.architectures import mnist_cnn
from minicnn.training.checkpoint import save_checkpoint

pytest.importorskip("onnx", reason="needs the export extra: pip install 'minicnn[export]'")
pytest.importorskip("safetensors", reason="needs the export extra: pip install 'minicnn[export]'")


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
