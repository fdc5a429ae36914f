import json

from minicnn.analysis import curves
from tests.analysis.conftest import read_png


def test_the_run_drew_its_curves_and_kept_its_kernels(trained_run):
    read_png(trained_run / "curves.png")
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert [s["label"] for s in metrics["kernel_evolution"]] == ["step 0", "epoch 1"]
    assert all("kernels_snapshot" not in r for r in metrics["history"])


def test_curves_arrays_and_command(trained_run, tmp_path, capsys):
    c = curves.curves(curves.read_history(trained_run / "metrics.json"))
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert list(c["epoch"]) == [1] and c["test_accuracy"][0] == metrics["history"][0]["test_accuracy"]
    assert curves.main([str(trained_run / "metrics.json"), "--out", str(tmp_path)]) == 0
    read_png(tmp_path / "curves.png")
    assert curves.main([str(trained_run / "metrics.json")]) == 2  # the run's own curves.png is kept
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_text_without_matplotlib(trained_run, tmp_path, capsys, no_matplotlib):
    assert curves.main([str(trained_run)]) == 0
    assert "test_accuracy" in capsys.readouterr().out


def test_bad_files(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"history": 3}')
    assert curves.main([str(tmp_path / "m.json")]) == 2
    assert "no training history" in capsys.readouterr().err
