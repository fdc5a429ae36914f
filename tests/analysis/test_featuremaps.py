import numpy as np

from minicnn.analysis import featuremaps
from minicnn.analysis.common import Run
from tests.analysis.conftest import read_png


def test_feature_maps_have_each_layers_output_shape(trained_run):
    run = Run(trained_run / "checkpoint.npz")
    x = np.random.default_rng(0).normal(size=(1, 1, 28, 28)).astype(np.float32)
    maps = featuremaps.feature_maps(run.model, x)
    assert [name for name, _ in maps] == ["input", "0: Conv2D", "3: Conv2D"]  # a pool follows each conv
    shape = (1, 28, 28)
    expected = [shape]
    for i, layer in enumerate(run.model.layers[:4]):
        shape = layer.output_shape(shape)
        if i in (0, 3):
            expected.append(tuple(shape))
    assert [m.shape for _, m in maps] == expected == [(1, 28, 28), (8, 28, 28), (16, 14, 14)]
    np.testing.assert_array_equal(maps[1][1], run.model.layers[0].forward(x)[0])
    only = featuremaps.feature_maps(run.model, x, layer=3)
    assert [name for name, _ in only] == ["input", "3: Conv2D"]


def test_command_writes_the_figure(trained_run, mnist_root, tmp_path, capsys):
    assert featuremaps.main([str(trained_run), "--index", "3", "--data", str(mnist_root), "--out", str(tmp_path)]) == 0
    read_png(tmp_path / "featuremaps.png")
    assert "figure:" in capsys.readouterr().out
    assert featuremaps.main([str(trained_run), "--data", str(mnist_root), "--out", str(tmp_path)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_text_without_matplotlib(trained_run, mnist_root, tmp_path, capsys, no_matplotlib):
    assert featuremaps.main([str(trained_run), "--data", str(mnist_root), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3: Conv2D: shape (16, 14, 14)" in out and out.count("channel ") == 8 + 16
    assert not (tmp_path / "featuremaps.png").exists()


def test_bad_inputs_get_one_line(trained_run, mnist_root, tmp_path, capsys):
    assert featuremaps.main([str(trained_run), "--data", str(mnist_root), "--index", "99999"]) == 2
    assert "past the end of the test set" in capsys.readouterr().err
    assert featuremaps.main([str(trained_run), "--data", str(mnist_root), "--layer", "1", "--out", str(tmp_path)]) == 2
    assert "not a convolution" in capsys.readouterr().err
    assert featuremaps.main([str(tmp_path / "none.npz")]) == 2
    (tmp_path / "x.png").write_bytes(b"not an image")
    assert featuremaps.main([str(trained_run), "--image", str(tmp_path / "x.png"), "--out", str(tmp_path)]) == 2
    assert "not an image" in capsys.readouterr().err


def test_nan_weights_are_one_line_naming_the_entry(trained_run, mnist_root, tmp_path, capsys):
    """Issue 24: a checkpoint edited to hold a NaN (digest recomputed) used to be drawn with exit 0."""
    from tests import crafted
    path = tmp_path / "checkpoint.npz"
    path.write_bytes((trained_run / "checkpoint.npz").read_bytes())
    entries = crafted.read_entries(path)
    entries["model/3.b"][2] = np.nan
    crafted.rewrite(path, entries)
    assert featuremaps.main([str(path), "--data", str(mnist_root), "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entry 'model/3.b' holds 1 NaN or infinite values" in err, err
    assert not (tmp_path / "figs").exists()
