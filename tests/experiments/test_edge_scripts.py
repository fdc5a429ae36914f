"""``minicnn sobel`` and ``minicnn edges`` (minicnn/experiments/learn_sobel.py, edge_classifier.py), run as a user
would, and the scripts of the same names in experiments/ that call them."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.__main__ import COMMANDS

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_script(name):
    return importlib.import_module(f"minicnn.experiments.{name}")


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


@pytest.mark.parametrize("name, command", [("learn_sobel", "sobel"), ("edge_classifier", "edges")])
def test_the_scripts_in_experiments_are_the_commands(name, command, tmp_path):
    assert COMMANDS[command][0] == f"minicnn.experiments.{name}"
    done = subprocess.run([sys.executable, str(EXPERIMENTS / f"{name}.py"), "--help"], capture_output=True, text=True,
                          cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: minicnn {command}"), done.stderr


def test_minicnn_sobel_runs_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "minicnn", "sobel", "--steps", "20", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr                          # main returns the metrics: exit status 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["steps"] <= 20
