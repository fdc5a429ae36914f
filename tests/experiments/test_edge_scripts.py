"""The scripts learn_sobel.py and edge_classifier.py, run as a user would."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learn_sobel_script_writes_results(tmp_path, capsys):
    script = load_script("learn_sobel")
    metrics = script.main(["--seed", "3", "--steps", "800", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["seed"] == 3 and saved["steps"] == metrics["steps"] <= 800
    assert min(saved["cosine"].values()) >= 0.999
    assert set(saved) >= {"seed", "cosine", "steps", "seconds"}
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as w:
        assert w["0.W"].shape == (2, 1, 3, 3)
    curve = np.loadtxt(tmp_path / "loss_curve.csv", delimiter=",", skiprows=1)
    assert curve.shape[1] == 4 and curve[-1, 1] < curve[0, 1]
    out = capsys.readouterr().out
    assert "sobel_x" in out and "relative error" in out and "engine fast:" in out and saved["engine"] == "fast"


def test_learn_sobel_runs_on_the_engine_it_is_given(tmp_path, capsys):
    script = load_script("learn_sobel")
    fast = script.main(["--seed", "1", "--steps", "40", "--out", str(tmp_path / "fast")])
    loops = script.main(["--seed", "1", "--steps", "40", "--engine", "loops", "--images", "16", "--size", "8",
                         "--out", str(tmp_path / "loops")])
    textbook = script.main(["--seed", "1", "--steps", "40", "--engine", "textbook", "--out", str(tmp_path / "textbook")])
    assert json.loads((tmp_path / "loops" / "metrics.json").read_text())["engine"] == "loops (textbook: sgd_update)"
    assert "engine textbook:" in capsys.readouterr().out
    for name in fast["cosine"]:                       # the same training, computed by other code
        assert textbook["cosine"][name] == pytest.approx(fast["cosine"][name], abs=1e-4)
    assert loops["steps"] <= 40


def test_edge_classifier_script_smoke(tmp_path, capsys):
    script = load_script("edge_classifier")
    summary = script.main(["--seeds", "0,1", "--train", "200", "--val", "50", "--epochs", "1",
                           "--out", str(tmp_path)])
    assert summary["seeds"] == [0, 1] and len(summary["median_similarity_per_seed"]) == 2
    assert (tmp_path / "seed1" / "metrics.json").exists() and (tmp_path / "summary.json").exists()
    assert "best match" in capsys.readouterr().out


@pytest.mark.parametrize("script, option, value", [("learn_sobel", "--steps", "0"), ("learn_sobel", "--seed", "-1"),
                                                   ("edge_classifier", "--seeds", "0,-1"),
                                                   ("edge_classifier", "--batch-size", "0")])
def test_scripts_refuse_unusable_numbers(script, option, value, capsys):
    with pytest.raises(SystemExit) as info:
        load_script(script).build_parser().parse_args([option, value])
    assert info.value.code == 2 and f"argument {option}: expected" in capsys.readouterr().err
