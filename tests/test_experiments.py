import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from minicnn.edges.edge_task import build_model, match_kernels, train_edge_classifier
from minicnn.edges.filters import get_kernel
from minicnn.edges.sobel_task import filter_valid, make_data, optimal_kernels, train_sobel
from minicnn.nn.reference import conv2d_naive

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filter_valid_matches_reference_loops():
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 7))
    k = get_kernel("sobel_45", np.float64)
    expected = conv2d_naive(x, k[None, None], np.zeros(1), 1, 0)
    np.testing.assert_allclose(filter_valid(x, k), expected, atol=1e-12)


def test_targets_are_sobel_of_the_inputs():
    x, y, scale = make_data(4, 12, rng=np.random.default_rng(0), dtype=np.float64)
    assert x.shape == (4, 1, 12, 12) and y.shape == (4, 2, 10, 10)
    assert abs(x.mean()) < 1e-9 and x.std() == pytest.approx(1.0)
    np.testing.assert_allclose(y[:, :1] * scale, filter_valid(x, get_kernel("sobel_x", np.float64)), atol=1e-9)
    np.testing.assert_allclose(y[:, 1:] * scale, filter_valid(x, get_kernel("sobel_y", np.float64)), atol=1e-9)
    # least squares on noise-free data gives back Sobel itself (up to the target scale)
    np.testing.assert_allclose(optimal_kernels(x, y) * scale, [get_kernel("sobel_x"), get_kernel("sobel_y")], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_experiment1_recovers_sobel(seed):
    result = train_sobel(rng=np.random.default_rng(seed), steps=1000)
    assert result["converged"]
    assert min(result["cosine"].values()) >= 0.999
    assert max(result["relative_error"].values()) < 0.05  # right scale too, not just the right pattern
    np.testing.assert_allclose(result["kernels"], [get_kernel("sobel_x"), get_kernel("sobel_y")], atol=0.1)


def test_experiment1_with_noisy_images():
    result = train_sobel(rng=np.random.default_rng(0), steps=1000, noise=0.1)
    assert min(result["cosine"].values()) >= 0.99


def test_experiment1_clean_targets_approaches_the_least_squares_optimum():
    result = train_sobel(rng=np.random.default_rng(0), steps=600, noise=0.1, clean_targets=True)
    assert min(result["cosine_to_optimal"].values()) > 0.99
    assert not result["converged"]  # the denoising optimum is not Sobel itself


def test_experiment1_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        train_sobel(rng=np.random.default_rng(0), steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_sobel(rng=np.random.default_rng(0), batch_size=1000)


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
    assert "sobel_x" in out and "relative error" in out


def test_edge_model_shapes_and_matching():
    rng = np.random.default_rng(0)
    model = build_model(8, 16, rng=rng)
    assert model.forward(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 8)
    model = build_model(4, 16, pool=7, classes=4, rng=rng)
    assert model.forward(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 4)
    W = np.stack([get_kernel("sobel_135"), -get_kernel("sobel_x")])[:, None]
    assert [(m.angle, m.polarity) for m in match_kernels(W)] == [(135, 1), (0, -1)]
    with pytest.raises(ValueError, match=r"\(F, 1, 3, 3\)"):
        match_kernels(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="pool"):
        build_model(8, 16, pool=20, rng=rng)


def test_edge_classifier_learns_edge_like_kernels_in_a_short_run():
    result = train_edge_classifier(rng=np.random.default_rng(0), n_train=1500, n_val=300, epochs=3)
    assert result["val_accuracy"] > 0.5  # chance is 1/8
    assert result["median_similarity"] > 0.75  # random 3x3 kernels score about 0.47
    assert len(result["matches"]) == 8


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
