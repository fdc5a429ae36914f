"""The benchmark's smoke test and its networks (no timing asserted); the PyTorch twins only when torch is importable."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.nn.losses import softmax_cross_entropy

REPO = Path(__file__).resolve().parents[2]
BENCHMARKING = REPO / "experiments" / "benchmarking.py"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load("benchmark_script", REPO / "experiments" / "benchmark.py")
bench = script.bench          # experiments/benchmarking.py, as benchmark.py imports it

LAYERS = {"ref-cnn": ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dense"],
          "bn-cnn": ["Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D", "Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D",
                     "Flatten", "Dense"]}


def test_benchmark_quick_mode_writes_every_section_for_both_networks(tmp_path):
    path = tmp_path / "bench.json"
    assert script.main(["--quick", "--threads", "1", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    for key in ("machine", "versions", "threads", "networks", "sgemm_gflops", "naive_vs_conv", "layers", "new_layers",
                "training", "peak_rss_mb"):
        assert key in result, key
    assert result["threads"] == 1
    assert result["networks"] == ["ref-cnn", "bn-cnn"]
    assert {row["batch"] for row in result["naive_vs_conv"]} == {1, 64}
    for network, layers in LAYERS.items():
        for batch in (8, 16):
            rows = [row for row in result["layers"] if row["network"] == network and row["batch"] == batch]
            assert [row["layer"] for row in rows] == layers, (network, batch)
    assert [(row["network"], row["batch"]) for row in result["training"]] == [
        ("ref-cnn", 8), ("ref-cnn", 16), ("bn-cnn", 8), ("bn-cnn", 16)]
    assert {row["layer"].split("(")[0] for row in result["new_layers"]} == {
        "BatchNorm2D", "BatchNorm1D", "Dropout", "AvgPool2D", "GlobalAvgPool2D", "LeakyReLU", "Tanh", "Sigmoid"}
    assert all(row["forward_ms"] > 0 and row["backward_ms"] > 0 and "ratio" not in row for row in result["new_layers"])
    assert all(row["images_per_s"] > 0 for row in result["training"])
    assert result["peak_rss_mb"]["minicnn"]["peak_rss_mb"] > 0
    assert result["torch"] == {"available": result["torch"]["available"], "requested": False}


def test_networks_option_takes_a_subset_and_rejects_unknown_names(capsys):
    assert script.parse_args(["--networks", "bn-cnn"]).networks == ["bn-cnn"]
    assert script.parse_args([]).networks == ["ref-cnn", "bn-cnn"]
    with pytest.raises(SystemExit):
        script.parse_args(["--networks", "ref-cnn,vgg"])
    assert "expected comma-separated names of ref-cnn, bn-cnn, got 'ref-cnn,vgg'" in capsys.readouterr().err


def test_bn_cnn_has_bias_free_convs_and_batch_norms_like_torchs_defaults():
    model = bench.bn_cnn(np.random.default_rng(0))
    assert [type(layer).__name__ for layer in model.layers] == LAYERS["bn-cnn"]
    assert [name for name, _, _ in model.parameters()] == ["0.W", "1.gamma", "1.beta", "4.W", "5.gamma", "5.beta",
                                                           "9.W", "9.b"]
    assert [(model.layers[i].eps, model.layers[i].momentum) for i in (1, 5)] == [(1e-5, 0.1)] * 2
    x, y = bench.mnist_like(4, np.random.default_rng(1))
    logits = model.forward(x)
    assert logits.shape == (4, 10) and logits.dtype == np.float32
    assert model.training


def test_worker_prints_one_line_of_json_for_bn_cnn_from_any_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, str(BENCHMARKING), "alone", "minicnn", "4", "2", "1", "bn-cnn"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert {k: result[k] for k in ("framework", "network", "batch", "steps")} == {
        "framework": "minicnn", "network": "bn-cnn", "batch": 4, "steps": 2}
    assert result["step_ms"] > 0


def test_worker_defaults_to_ref_cnn(capsys):
    assert bench.worker_main(["alone", "minicnn", "4", "1", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["network"] == "ref-cnn" and result["engine"]["implementation"] == "fast"


def test_worker_runs_on_the_engine_it_is_given(capsys):
    assert bench.worker_main(["alone", "minicnn", "4", "1", "1", "bn-cnn", "textbook"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"]["implementation"] == "textbook"
    with pytest.raises(ValueError, match="engine must be one of"):
        bench.worker_main(["alone", "minicnn", "4", "1", "1", "bn-cnn", "gpu"])


def test_plain_mode_runs_the_readme_loop_in_fresh_processes_with_nothing_tuned(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")            # the child must not inherit it
    path = tmp_path / "plain.json"
    assert script.main(["--plain", "--quick", "--threads", "1", "--networks", "ref-cnn", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["frameworks"] == ["minicnn"] and [(r["network"], r["batch"]) for r in result["plain"]] == [
        ("ref-cnn", 8), ("ref-cnn", 16)]
    for row in result["plain"]:
        spread = row["minicnn_spread_ms"]
        assert 0 < spread["min"] <= spread["median"] <= spread["max"] and len(row["minicnn_runs_ms"]) == row["rounds"]


def test_plain_mode_names_the_blas_and_asks_the_torch_python_for_pytorch(tmp_path, capfd):
    import subprocess

    from minicnn.engine import cblas
    has_torch = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    path = tmp_path / "plain.json"
    assert script.main(["--plain", "--quick", "--threads", "1", "--networks", "ref-cnn", "--torch",
                        "--torch-python", sys.executable, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["blas"] == cblas.BACKEND and f"minicnn's BLAS: {cblas.BACKEND}" in capfd.readouterr().out
    if has_torch:
        assert result["frameworks"] == ["minicnn", "torch"] and sys.executable in result["versions"]["torch"]
    else:
        assert result["frameworks"] == ["minicnn"] and "torch" not in result["versions"]


def test_plain_mode_without_pytorch_in_the_torch_python_says_so(tmp_path, capfd):
    bare = tmp_path / "python-without-torch"
    bare.write_text("#!/bin/sh\nexit 1\n")
    bare.chmod(0o755)
    assert script.main(["--plain", "--quick", "--threads", "1", "--networks", "ref-cnn", "--torch",
                        "--torch-python", str(bare), "--json", str(tmp_path / "plain.json")]) == 0
    assert f"PyTorch is not installed in {bare}: minicnn alone" in capfd.readouterr().out


def test_a_torch_python_without_minicnns_dependencies_is_refused_at_once_saying_what_to_install(tmp_path, capfd):
    half = tmp_path / "python-with-torch-only"
    half.write_text('#!/bin/sh\ncase "$2" in\n  *torch*) echo 2.13.0 ;;\n'
                    '  *) echo "ModuleNotFoundError: No module named \'tqdm\'" >&2; exit 1 ;;\nesac\n')
    half.chmod(0o755)
    status = script.main(["--plain", "--quick", "--threads", "1", "--networks", "ref-cnn", "--torch",
                          "--torch-python", str(half), "--json", str(tmp_path / "plain.json")])
    assert status == 1 and not (tmp_path / "plain.json").exists()
    assert re.search(r"imports PyTorch 2\.13\.0 but not minicnn \(ModuleNotFoundError: No module named 'tqdm'\)"
                     r".*-m pip install numpy scipy tqdm", capfd.readouterr().err)


def test_plain_worker_reports_its_environment_and_the_default_backward(capsys, monkeypatch):
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    calls = []
    real = bench.Sequential.backward
    monkeypatch.setattr(bench.Sequential, "backward", lambda self, *a, **k: calls.append((a[1:], k)) or real(self, *a, **k))
    assert bench.worker_main(["plain", "minicnn", "4", "1", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["environment"]["OPENBLAS_THREAD_TIMEOUT"] is None and result["step_ms"] > 0
    assert calls and set(map(repr, calls)) == {"((), {})"}         # model.backward(dlogits), as the README writes it


@pytest.mark.parametrize("argv, error, match", [
    (["alone", "minicnn", "4", "1", "1", "vgg"], ValueError, "unknown benchmark network 'vgg': expected one of ref-cnn, bn-cnn"),
    (["alone", "jax", "4", "1", "1"], SystemExit, "got: alone jax 4 1 1$"),
    (["memory", "minicnn", "4", "1", "1"], SystemExit, "got: memory minicnn 4 1 1$"),      # IMAGES missing
    (["alone", "minicnn", "4"], SystemExit, "got: alone minicnn 4$"),
    (["plain", "minicnn", "4", "1", "1", "ref-cnn", "fast"], SystemExit, "got: plain minicnn 4 1 1 ref-cnn fast$"),
])
def test_worker_rejects_bad_command_lines(argv, error, match):
    with pytest.raises(error, match=match):
        bench.worker_main(argv)


# -- PyTorch twins (skipped without torch) -------------------------------------------------------

@pytest.mark.parametrize("network", ["ref-cnn", "bn-cnn"])
def test_torch_twin_matches_forward_backward_and_running_stats_in_float64(network):
    torch = pytest.importorskip("torch")
    make, make_torch = bench.NETWORKS[network]
    rng = np.random.default_rng(2)
    model = make(rng, dtype=np.float64)
    net, pairs = make_torch(model)
    net.train()
    assert len(pairs) == len(list(model.parameters()))
    x, y = bench.mnist_like(6, rng)
    x = 2 + x.astype(np.float64)
    logits = model.forward(x)
    model.backward(softmax_cross_entropy(logits, y)[1])
    out = net(torch.from_numpy(x))
    torch.nn.CrossEntropyLoss()(out, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(logits, out.detach().numpy(), rtol=0, atol=1e-10)
    grads = {name: grad for name, _, grad in model.parameters()}
    for name, param in pairs:
        theirs = param.grad.numpy()
        np.testing.assert_allclose(grads[name], theirs.T if theirs.ndim == 2 else theirs, rtol=0, atol=1e-10, err_msg=name)
    buffers = dict(net.named_buffers())
    compared = 0
    for name, value in model.buffers():
        np.testing.assert_allclose(value, buffers[name].numpy(), rtol=1e-12, atol=0, err_msg=name)
        compared += 1
    assert compared == (4 if network == "bn-cnn" else 0)


@pytest.mark.parametrize("network, params, buffers", [("ref-cnn", 8, 0), ("bn-cnn", 8, 4)])
def test_compare_with_torch_finds_agreement_on_every_parameter(network, params, buffers):
    pytest.importorskip("torch")
    r = bench.compare_with_torch(8, 1, 1, np.random.default_rng(0), network)
    assert (r["network"], r["params_compared"], r["buffers_compared"]) == (network, params, buffers)
    assert r["logits_match"] and r["grads_match"] and r["running_stats_match"], r


def _off_by_momentum(model):
    net, pairs = bench.torch_bn_cnn(model)
    net[5].momentum = 0.5
    return net, pairs


def _off_by_a_weight(model):
    net, pairs = bench.torch_bn_cnn(model)
    with pytest.importorskip("torch").no_grad():
        net[9].weight[3] += 0.1          # the features after ReLU and pooling are >= 0, not all 0
    return net, pairs


@pytest.mark.parametrize("twin, fails", [(_off_by_momentum, {"running_stats_match"}),
                                         (_off_by_a_weight, {"logits_match", "grads_match"})])
def test_compare_with_torch_reports_a_twin_that_differs(monkeypatch, twin, fails):
    pytest.importorskip("torch")
    monkeypatch.setitem(bench.NETWORKS, "bn-cnn", (bench.bn_cnn, twin))
    r = bench.compare_with_torch(8, 1, 1, np.random.default_rng(0), "bn-cnn")
    assert {key for key in ("logits_match", "grads_match", "running_stats_match") if not r[key]} == fails
