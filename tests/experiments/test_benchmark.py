"""The benchmark's smoke test (no timing asserted)."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_quick_mode_writes_every_section(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "experiments" / "benchmark.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = tmp_path / "bench.json"
    assert script.main(["--quick", "--threads", "1", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    for key in ("machine", "versions", "threads", "sgemm_gflops", "naive_vs_conv", "layers", "new_layers", "training",
                "peak_rss_mb"):
        assert key in result, key
    assert result["threads"] == 1
    assert {row["batch"] for row in result["naive_vs_conv"]} == {1, 64}
    assert {row["layer"] for row in result["layers"]} == {"Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"}
    assert {row["layer"].split("(")[0] for row in result["new_layers"]} == {
        "BatchNorm2D", "BatchNorm1D", "Dropout", "AvgPool2D", "GlobalAvgPool2D", "LeakyReLU", "Tanh", "Sigmoid"}
    assert all(row["forward_ms"] > 0 and row["backward_ms"] > 0 and "ratio" not in row for row in result["new_layers"])
    assert all(row["images_per_s"] > 0 for row in result["training"])
    assert result["peak_rss_mb"]["minicnn"]["peak_rss_mb"] > 0
    assert result["torch"] == {"available": result["torch"]["available"], "requested": False}
