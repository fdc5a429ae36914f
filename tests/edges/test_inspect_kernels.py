import os
import pickle
import re
import tracemalloc

import numpy as np
import pytest

from minicnn.edges import inspect_kernels as inspect
from minicnn.edges.filters import get_kernel
from minicnn.utils import plotting


def conv_weights():
    """Three filters: +sobel_x, -sobel_y and +sobel_45, scaled and offset like learned ones."""
    W = np.stack([0.3 * get_kernel("sobel_x") + 0.05, -0.2 * get_kernel("sobel_y") - 0.1,
                  0.4 * get_kernel("sobel_45")])[:, None]
    return W.astype(np.float32)


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setattr(plotting, "have_matplotlib", lambda: False)
    monkeypatch.setattr(plotting, "_hint_given", False)


def test_inspect_mnist_style_checkpoint(tmp_path, capsys, no_matplotlib):
    path = tmp_path / "ckpt.npz"
    np.savez(path, **{"model/3.W": np.ones((2, 3, 3, 3)),  # a later conv layer comes first in the file
                      "optimizer/velocity/0.W": np.zeros((3, 1, 3, 3)),
                      "model/0.W": conv_weights(), "model/0.b": np.zeros(3), "model/5.W": np.ones((10, 4)),
                      "epoch": np.array(3)})
    assert inspect.main([str(path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "'model/0.W', shape (3, 1, 3, 3)" in out
    assert "filter 0: best match sobel_x (0 degrees, polarity +1)" in out
    assert "filter 1: best match -sobel_y (90 degrees, polarity -1)" in out
    assert "filter 2: best match sobel_45 (45 degrees, polarity +1)" in out
    # issue #17: -sobel_y is reported with the similarity to -sobel_y (+1), not to sobel_y (-1)
    assert out.count("cosine similarity (mean removed): +1.0000") == 3 and "-1.0000" not in out
    assert "best edge at any angle: 270 degrees, similarity +1.0000" in out
    assert "median |similarity| to the nearest sobel edge detector: 1.000 over 3 kernels" in out
    assert 'pip install "minicnn-numpy[plot]"' in captured.err
    assert not (tmp_path / "ckpt_kernels.png").exists()


def test_layer_order_is_numeric(tmp_path):
    key, W = inspect.first_conv_weights({"10.W": np.zeros((1, 1, 3, 3)), "2.W": np.ones((4, 1, 3, 3))})
    assert key == "2.W" and W.shape == (4, 1, 3, 3)


def test_inspect_writes_figure_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "w.npz"
    np.savez(path, **{"0.W": conv_weights(), "0.b": np.zeros(3)})
    assert inspect.main([str(path), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert "figure:" in capsys.readouterr().out


def test_non_3x3_kernels_are_printed_without_matching(tmp_path, capsys, no_matplotlib):
    path = tmp_path / "w.npz"
    np.savez(path, **{"0.W": np.ones((2, 1, 5, 5))})
    assert inspect.main([str(path)]) == 0
    assert "matching needs 3x3 kernels" in capsys.readouterr().out


def test_inspect_on_experiment_weights(tmp_path, capsys, no_matplotlib):
    from minicnn.nn import Conv2D
    from minicnn.nn.model import Sequential
    model = Sequential([Conv2D(1, 2, 3, rng=np.random.default_rng(0))])
    model.layers[0].params["W"][:] = np.stack([get_kernel("sobel_x"), get_kernel("sobel_y")])[:, None] * 0.5
    np.savez(tmp_path / "weights.npz", **model.state_dict())
    assert inspect.main([str(tmp_path / "weights.npz")]) == 0
    out = capsys.readouterr().out
    assert "best match sobel_x" in out and "best match sobel_y" in out


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: np.save(p, np.zeros((1, 1, 3, 3))), "single .npy array"),
    (lambda p: p.write_text("hello"), "not a zip file"),
    (lambda p: p.write_bytes(pickle.dumps({"0.W": 1})), "not a zip file"),
    (lambda p: np.savez(p, a=np.ones(3), b=np.ones((3, 3))), "no convolution weights"),
    (lambda p: np.savez(p, **{"0.W": np.array([None, 1], dtype=object)}), "Python objects.*need pickle"),
])
def test_bad_files_give_clear_errors(tmp_path, capsys, make, message):
    path = tmp_path / "ckpt.npz"
    make(path)
    if path.with_suffix(".npz.npy").exists():  # np.save appends .npy
        path.with_suffix(".npz.npy").rename(path)
    assert inspect.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn inspect: ")
    import re
    assert re.search(message, err), err


def _exit_and_error(args, capsys):
    code = inspect.main(args)
    err = capsys.readouterr().err
    return code, err


def test_deflate_bomb_is_refused_before_it_is_read(tmp_path, capsys):
    from tests.data.test_npz import deflate_bomb
    # 44,739,242 x 1 x 3 x 3 float32 is 1.6 GB; 1,000,000 kernels (36 MB of zeros) makes the same point small.
    path = deflate_bomb(tmp_path / "bomb.npz", "0.W", (1_000_000, 1, 3, 3))
    tracemalloc.start()
    try:
        code, err = _exit_and_error([str(path)], capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    assert re.fullmatch(r"minicnn inspect: error: \S*bomb\.npz: '0\.W' declares shape \(1000000, 1, 3, 3\): "
                        r"1000000 kernels of 3x3, more than the 4096 kernels .*; refusing to read it\n", err), err
    assert peak < 4 << 20, peak


@pytest.mark.parametrize("W,message", [
    (np.full((2, 1, 3, 3), np.nan), r"'0\.W' holds 18 NaN or infinite values out of 18"),
    (np.array([np.inf] + [0.0] * 8).reshape(1, 1, 3, 3), r"'0\.W' holds 1 NaN or infinite values out of 9"),
    (np.zeros((0, 1, 3, 3)), r"'0\.W' has shape \(0, 1, 3, 3\): no kernels to show"),
    (np.zeros((2, 1, 0, 3)), r"'0\.W' has shape \(2, 1, 0, 3\): no kernels to show"),
])
def test_kernels_that_cannot_be_shown_are_refused(tmp_path, capsys, no_matplotlib, W, message):
    path = tmp_path / "w.npz"
    np.savez(path, **{"0.W": W})
    code, err = _exit_and_error([str(path)], capsys)
    assert code == 2 and err.count("\n") == 1 and re.search(rf"w\.npz: {message}", err), err


def test_flipped_byte_is_one_line_and_exit_2(tmp_path, capsys, no_matplotlib):
    path = tmp_path / "w.npz"
    np.savez_compressed(path, **{"0.W": np.random.default_rng(0).standard_normal((8, 1, 3, 3))})
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    code, err = _exit_and_error([str(path)], capsys)
    assert code == 2 and err.startswith("minicnn inspect: error: ") and err.count("\n") == 1, err
    assert "w.npz" in err and "Traceback" not in err


def test_fifo_is_refused_without_hanging(tmp_path, capsys):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.npz")
    code, err = _exit_and_error([str(tmp_path / "pipe.npz")], capsys)
    assert code == 2 and "expected a regular npz archive, got a FIFO" in err


def test_out_directory_means_kernels_png_inside_it(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "w.npz"
    np.savez(path, **{"0.W": conv_weights()})
    (tmp_path / "figs").mkdir()
    assert inspect.main([str(path), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "kernels.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "figs.png").exists()


def test_unwritable_figure_path_is_one_line_and_exit_2(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "w.npz"
    np.savez(path, **{"0.W": conv_weights()})
    (tmp_path / "afile").write_text("")
    code, err = _exit_and_error([str(path), "--out", str(tmp_path / "afile" / "fig.png")], capsys)
    assert code == 2 and err.startswith("minicnn inspect: error: Not a directory") and err.count("\n") == 1, err
