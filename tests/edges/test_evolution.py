import json

import numpy as np
import pytest

from minicnn.edges import evolution
from minicnn.edges import inspect_kernels as inspect
from minicnn.edges.filters import get_kernel
from minicnn.utils import plotting


def write_run(folder):
    rng = np.random.default_rng(0)
    W0 = rng.normal(size=(3, 1, 3, 3))
    W1 = np.stack([get_kernel("sobel_x"), -get_kernel("sobel_y"), get_kernel("sobel_45")])[:, None]
    snaps = [evolution.snapshot(W0, "step 0"), evolution.snapshot(W1, "epoch 1")]
    (folder / "metrics.json").write_text(json.dumps({"kernel_evolution": snaps}))
    return W1


def test_snapshots_round_trip_and_text(tmp_path):
    W1 = write_run(tmp_path)
    labels, kernels = evolution.read_snapshots(tmp_path / "metrics.json")
    assert labels == ["step 0", "epoch 1"] and kernels.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(kernels[1], W1[:, 0])
    text = evolution.evolution_text(kernels, labels)
    assert "-sobel_y +1.00" in text and "sobel_x +1.00" in text


def test_inspect_evolution_draws_the_grid(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    write_run(tmp_path)
    assert inspect.main([str(tmp_path), "--evolution"]) == 0
    png = matplotlib.image.imread(tmp_path / "evolution.png")
    assert png.shape[0] > 200 and png.shape[1] > 200 and png[..., :3].std() > 0.05
    assert inspect.main([str(tmp_path), "--evolution"]) == 2  # refuses to replace it
    assert "--overwrite" in capsys.readouterr().err
    assert inspect.main([str(tmp_path), "--evolution", "--overwrite"]) == 0


def test_inspect_evolution_text_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plotting, "have_matplotlib", lambda: False)
    write_run(tmp_path)
    assert inspect.main([str(tmp_path), "--evolution"]) == 0
    assert "epoch 1" in capsys.readouterr().out and not (tmp_path / "evolution.png").exists()


@pytest.mark.parametrize("content, message", [("{", "not a JSON file"), ('{"history": []}', "no kernel snapshots"),
                                              ('{"kernel_evolution": [{"label": "a", "kernels": [[1, 2]]}]}',
                                               "3x3 kernels")])
def test_bad_metrics_get_one_line(tmp_path, capsys, content, message):
    (tmp_path / "metrics.json").write_text(content)
    assert inspect.main([str(tmp_path / "metrics.json"), "--evolution"]) == 2
    assert message in capsys.readouterr().err


def test_a_long_title_is_wrapped_to_the_figures_width():
    pytest.importorskip("matplotlib")
    from minicnn.edges.evolution import evolution_figsize, evolution_title
    from minicnn.utils.plotting import text_width

    title = "synthetic images: kernels (Sobel units) during training, and their match"
    wrapped = evolution_title(title, 2)
    assert wrapped.replace("\n", " ") == title and wrapped.count("\n") >= 1
    assert all(text_width(line, 9) <= evolution_figsize(1, 2)[0] for line in wrapped.splitlines())
    assert text_width(title, 9) > evolution_figsize(1, 2)[0], "unwrapped, it would be clipped"
