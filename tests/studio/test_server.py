"""The studio's endpoints through HTTP: a real server on a free port, in a thread, asked with the standard library."""
import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from minicnn.analysis.common import Run
from minicnn.analysis.images import digit_image
from minicnn.analysis.predict import top_classes
from minicnn.data.fetch import DATASETS
from minicnn.studio import api, server
from minicnn.studio.server import MAX_BODY, static_files
from minicnn.training import architectures
from minicnn.training.checkpoint import save_checkpoint
from tests.studio.conftest import nested_loop_convolution, png_data_url

REPO = Path(__file__).resolve().parents[2]
SMALL = [[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [2, 1, 0, 1, 2], [0, 1, 2, 3, 1]]
SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def test_the_page_and_its_files_are_served(studio_client):
    status, page = studio_client.get("/")
    assert status == 200 and b"minicnn studio" in page and b"/static/studio.js" in page
    for name in ("studio.js", "studio.css", "index.html"):
        status, data = studio_client.get(f"/static/{name}")
        assert status == 200 and data == (Path(__file__).parents[2] / "minicnn/studio/static" / name).read_bytes()
    # the page needs nothing from elsewhere: no http(s) address in any of its files
    for name, data in static_files().items():
        assert b"http://" not in data and b"https://" not in data, name


def test_stepper_trace_equals_nested_loops_step_by_step(studio_client):
    for stride, padding in ((1, 0), (2, 1), (1, 2), (3, 0)):
        status, trace = studio_client.post("/api/convolve", {"image": SMALL, "kernel": SOBEL_X,
                                                             "stride": stride, "padding": padding})
        assert status == 200 and trace["fits"]
        expected = nested_loop_convolution(SMALL, SOBEL_X, stride, padding)
        assert [(s["row"], s["col"]) for s in trace["steps"]] == [(i, j) for i, j, _ in expected]
        for step, (_, _, total) in zip(trace["steps"], expected):
            assert step["total"] == pytest.approx(total, abs=1e-9)
            assert float(step["text"].rsplit("=", 1)[1]) == pytest.approx(total, abs=1e-9)
            padded = np.array(trace["padded"])
            window = padded[step["top"]:step["top"] + 3, step["left"]:step["left"] + 3]
            np.testing.assert_allclose(step["products"], window * np.array(SOBEL_X))
        H_out = (5 + 2 * padding - 3) // stride + 1
        assert trace["output_shape"] == [H_out, H_out]
        np.testing.assert_allclose(np.ravel(trace["output"]), [t for _, _, t in expected])
        assert trace["conv2d_max_difference"] < 1e-9


def test_an_impossible_size_is_explained_in_words(studio_client):
    status, trace = studio_client.post("/api/convolve", {"image": [[1, 2], [3, 4]], "kernel": SOBEL_X,
                                                         "stride": 1, "padding": 0})
    assert status == 200 and trace["fits"] is False
    assert "3x3 kernel" in trace["explanation"] and "only 2" in trace["explanation"]
    assert trace["formula"]["rows"] == "floor((2 + 2*0 - 3) / 1) + 1 = 0"


def _test_digit(mnist_root, index=0):
    _, _, images, labels = DATASETS["mnist"].load(mnist_root, download=False)
    return images[index], int(labels[index])


def test_predict_matches_the_predict_command(studio_client, trained_run, mnist_root, tmp_path):
    digit, _ = _test_digit(mnist_root, 3)
    url = png_data_url(digit)
    status, r = studio_client.post("/api/predict", {"png": url})
    assert status == 200
    # the same picture as a file, read and prepared the way `python -m minicnn predict` does
    path = tmp_path / "digit.png"
    import base64

    path.write_bytes(base64.b64decode(url.split(",", 1)[1]))
    run = Run(trained_run)
    prepared = digit_image(path)
    classes, probs = top_classes(run.model, run.prepare(prepared[None]))
    assert r["image"] == prepared.tolist()
    assert [t["class"] for t in r["top"]] == classes.tolist()
    np.testing.assert_allclose([t["probability"] for t in r["top"]], probs, atol=1e-6)
    # every convolution's maps, after the activation, and the saliency's shape
    names = [m["name"] for m in r["featuremaps"]]
    assert names == ["0: Conv2D", "3: Conv2D"] and r["featuremaps"][0]["shape"] == [8, 28, 28]
    assert np.array(r["saliency"]["magnitude"]).shape == (28, 28) and r["saliency"]["class"] == classes[0]


def test_two_tabs_at_once_get_what_one_tab_gets(studio_client, mnist_root):
    urls = [png_data_url(_test_digit(mnist_root, i)[0]) for i in range(4)]
    alone = [studio_client.post("/api/predict", {"png": u})[1] for u in urls]
    together = [None] * 8

    def ask(k):
        together[k] = studio_client.post("/api/predict", {"png": urls[k % 4]})[1]

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for k, r in enumerate(together):
        expected = alone[k % 4]
        assert r["top"] == expected["top"] and r["saliency"] == expected["saliency"]
        assert r["featuremaps"] == expected["featuremaps"]


def test_saliency_matches_finite_differences_on_a_small_model(start_studio, mnist_root, tmp_path):
    """A smooth network (Tanh, no pooling: no kinks), so centred differences in float64 are the true gradient."""
    spec = [{"type": "Conv2D", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": 1},
            {"type": "Tanh"}, {"type": "Flatten"}, {"type": "Dense", "in_features": 2 * 28 * 28, "out_features": 10}]
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    save_checkpoint(tmp_path / "checkpoint.npz", model=model)
    client = start_studio(tmp_path / "checkpoint.npz")
    status, r = client.post("/api/predict", {"png": png_data_url(_test_digit(mnist_root, 0)[0])})
    assert status == 200
    run = Run(tmp_path)
    x = run.prepare(np.array(r["image"], dtype=np.uint8)[None]).astype(np.float64)
    exact = architectures.build_model(spec, dtype=np.float64)
    exact.load_state_dict({k: v.astype(np.float64) for k, v in run.model.state_dict().items()})
    cls, eps = r["saliency"]["class"], 1e-5
    assert cls == int(np.argmax(exact.forward(x)[0]))
    numeric = np.zeros((28, 28))
    for i in range(28):
        for j in range(28):
            up, down = x.copy(), x.copy()
            up[0, 0, i, j] += eps
            down[0, 0, i, j] -= eps
            numeric[i, j] = (exact.forward(up)[0, cls] - exact.forward(down)[0, cls]) / (2 * eps)
    gradient = np.array(r["saliency"]["gradient"])
    # float32 backward against float64 differences: agreement to float32's precision, relative to the largest
    assert np.max(np.abs(gradient - numeric)) <= 1e-4 * np.max(np.abs(numeric))
    np.testing.assert_allclose(r["saliency"]["magnitude"], np.abs(gradient), atol=1e-8)


def _train(client, task, seed, chunks, lr=0.1):
    status, r = client.post("/api/train/new", {"task": task, "seed": seed, "lr": lr})
    assert status == 200 and r["step"] == 0
    losses = []
    for n in chunks:
        status, r = client.post("/api/train/step", {"session": r["session"], "steps": n})
        assert status == 200
        losses += r["losses"]
    return r, losses


@pytest.fixture
def no_time_budget(monkeypatch):
    """Every step asked for is trained, however busy the machine (the budget is tested on its own)."""
    monkeypatch.setattr(api, "TRAIN_BUDGET", 600.0)


@pytest.mark.parametrize("task", ["sobel", "edges", "mnist"])
def test_training_is_reproducible_from_a_seed(studio_client, task, no_time_budget):
    a, losses_a = _train(studio_client, task, 7, [12])
    b, losses_b = _train(studio_client, task, 7, [4, 1, 7])     # the same steps, in other calls
    c, _ = _train(studio_client, task, 8, [12])
    assert a["step"] == b["step"] == 12
    assert a["kernels"] == b["kernels"] and losses_a == losses_b
    assert a["kernels"] != c["kernels"]
    assert len(losses_a) == 12


def test_a_request_trains_no_longer_than_its_time_budget(studio_client, monkeypatch):
    monkeypatch.setattr(api, "TRAIN_BUDGET", 0.0)   # past the budget after the first step
    r, losses = _train(studio_client, "sobel", 0, [50, 50])
    assert r["step"] == 2 and len(losses) == 2


def test_training_learns_sobel(studio_client, no_time_budget):
    r, losses = _train(studio_client, "sobel", 0, [200, 200], lr=0.2)
    assert [m["label"] for m in r["matches"]] == ["sobel_x", "sobel_y"]
    assert min(m["similarity"] for m in r["matches"]) > 0.999
    assert losses[-1] < 0.01 * losses[0]


def test_the_timeline_gives_back_each_step_exactly(studio_client, no_time_budget):
    status, r = studio_client.post("/api/train/new", {"task": "sobel", "seed": 3, "lr": 0.2})
    session, start = r["session"], r["kernels"]
    seen = {0: r["kernels"]}
    for _ in range(6):
        status, r = studio_client.post("/api/train/step", {"session": session, "steps": 5})
        seen[r["step"]] = (r["kernels"], r["losses"][-1])
    for step in (5, 15, 30):
        status, at = studio_client.post("/api/train/at", {"session": session, "step": step})
        assert status == 200 and at["step"] == step and at["steps"] == 30
        assert at["kernels"] == seen[step][0] and at["loss"] == seen[step][1]
    status, at = studio_client.post("/api/train/at", {"session": session, "step": 0})
    assert at["kernels"] == start and at["loss"] is None
    # and replaying from the seed gives the same kernels (what a shared link does)
    again, _ = _train(studio_client, "sobel", 3, [15], lr=0.2)
    assert again["kernels"] == seen[15][0]
    status, answer = studio_client.post("/api/train/at", {"session": session, "step": 31})
    assert status == 400 and "from 0 to 30" in answer["error"]


def test_small_losses_keep_their_digits(studio_client, no_time_budget):
    """A loss of 1e-8 stays 1e-8 (it was rounded to 0.0, and the log-scale curve lost it)."""
    r, losses = _train(studio_client, "sobel", 0, [400], lr=0.2)
    assert min(losses) < 1e-6 and all(v > 0 for v in losses)


def test_backward_trace_is_conv2d_backward_cell_by_cell(studio_client):
    from minicnn.nn.conv import Conv2D
    from minicnn.nn.losses import mse

    bright_left = [[1, 0, -1]] * 3
    status, r = studio_client.post("/api/backward", {"image": SMALL, "kernel": bright_left, "lr": 0.05})
    assert status == 200
    x = np.array(SMALL, dtype=np.float64)[None, None]
    conv = Conv2D(1, 1, 3, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    conv.params["W"][...] = bright_left
    target = np.array([[6, 0, -5], [0, -2, -1], [-2, 0, 2]], dtype=np.float64)   # the 5x5 example under Sobel x
    fmap = conv.forward(x)
    loss, delta = mse(fmap, target[None, None])
    dx = conv.backward(delta)
    assert r["fmap"] == [[-4, 2, 4], [0, 0, 0], [0, 0, 0]] and r["target"] == target.tolist()
    assert r["loss"] == pytest.approx(loss) == pytest.approx(22.0)
    np.testing.assert_allclose(r["delta"], delta[0, 0])
    np.testing.assert_allclose(r["dW"], conv.grads["W"][0, 0], rtol=1e-12)
    np.testing.assert_allclose(r["dx"], dx[0, 0], atol=1e-12)
    first = r["dW_cells"][0]
    assert (first["row"], first["col"]) == (0, 0) and len(r["dW_cells"]) == 9 and len(r["dx_cells"]) == 25
    np.testing.assert_allclose(first["products"], delta[0, 0] * x[0, 0, :3, :3])
    assert first["total"] == pytest.approx(conv.grads["W"][0, 0, 0, 0])
    assert first["text"].endswith("= 5.5556")
    for c in r["dx_cells"]:
        assert c["total"] == pytest.approx(dx[0, 0, c["row"], c["col"]], abs=1e-12)
    assert r["flipped"] == [[-1, 0, 1]] * 3
    # one SGD step: W - lr dW, and its cosine to Sobel x rises
    np.testing.assert_allclose(r["sgd"]["next"]["kernel"], np.array(bright_left) - 0.05 * conv.grads["W"][0, 0])
    assert r["sgd"]["next"]["cosine"] > r["sgd"]["cosine"]
    # ten steps later the page shows the kernel after ten steps, and the history of all of them
    status, r10 = studio_client.post("/api/backward", {"image": SMALL, "kernel": bright_left, "lr": 0.05, "sgd_steps": 10})
    assert len(r10["sgd"]["history"]) == 11 and r10["sgd"]["history"][1]["cosine"] == pytest.approx(r["sgd"]["next"]["cosine"])
    assert r10["initial_kernel"] == bright_left and r10["sgd"]["cosine"] > r["sgd"]["next"]["cosine"]


def test_backward_picks_a_learning_rate_that_converges_on_the_image(studio_client):
    step = [[0, 0, 0, 9, 9, 9, 9]] * 7
    status, r = studio_client.post("/api/backward", {"image": step, "kernel": [[1, 0, -1]] * 3, "sgd_steps": 20})
    assert status == 200 and r["sgd"]["lr"] == 0.001 < r["sgd"]["stable_lr"]
    assert r["sgd"]["history"][-1]["loss"] < r["sgd"]["history"][0]["loss"]
    status, r = studio_client.post("/api/backward", {"image": SMALL, "kernel": [[1, 0, -1]] * 3})
    assert r["sgd"]["lr"] == r["sgd"]["suggested_lr"] == 0.05


def test_backward_nudge_and_random_kernel(studio_client):
    body = {"image": SMALL, "kernel": [[1, 0, -1]] * 3, "lr": 0.05, "nudge": {"row": 2, "col": 0, "eps": 1e-3}}
    status, r = studio_client.post("/api/backward", body)
    n = r["nudge"]
    assert status == 200 and n["gradient"] == pytest.approx(r["dW"][2][0])
    assert abs(n["delta_loss"] / n["eps"] - n["gradient"]) <= 1e-3 * abs(n["gradient"])
    status, a = studio_client.post("/api/backward", {"image": SMALL, "random_seed": 4, "lr": 0.05})
    status, b = studio_client.post("/api/backward", {"image": SMALL, "random_seed": 4, "lr": 0.05})
    status, c = studio_client.post("/api/backward", {"image": SMALL, "random_seed": 5, "lr": 0.05})
    assert a["kernel"] == b["kernel"] != c["kernel"]
    assert np.array(a["kernel"]).shape == (3, 3)


def test_errors_name_the_cell_in_the_learners_words(studio_client):
    status, r = studio_client.post("/api/convolve", {"image": [[1, 2, 3], [4, None, 6]], "kernel": [[1]],
                                                     "stride": 1, "padding": 0})
    assert status == 400 and r["error"] == "image: row 2, column 2 must be a number of at most 1e+06 in size, got null"
    status, r = studio_client.post("/api/train/new", {"task": None, "seed": 0, "lr": 0.1})
    assert "got null" in r["error"] and "None" not in r["error"]


def test_kernels_and_curves_of_the_run(studio_client, trained_run):
    status, k = studio_client.get("/api/kernels")
    assert status == 200 and k["shape"] == [8, 1, 3, 3] and len(k["kernels"]) == 8
    W = Run(trained_run).model.layers[0].params["W"]
    np.testing.assert_allclose([r["kernel"] for r in k["kernels"]], W[:, 0], atol=1e-6)
    assert all(abs(r["similarity"]) <= 1 and len(r["reference"]) == 3 for r in k["kernels"])
    assert [s["label"] for s in k["evolution"]] == ["step 0", "epoch 1"]
    status, c = studio_client.get("/api/curves")
    assert status == 200 and c["epoch"] == [1.0] and 0.5 < c["test_accuracy"][0] <= 1


def test_learned_kernel_for_the_stepper(studio_client, trained_run):
    status, r = studio_client.post("/api/kernel", {"layer": 3, "filter": 5, "channel": 2})
    assert status == 200
    W = Run(trained_run).model.layers[3].params["W"]
    np.testing.assert_allclose(r["kernel"], W[5, 2], atol=1e-4)


def _bad_requests(big, auth):
    """(what, how to send it, expected status); ``how`` is ("raw", bytes) or (method, path, body)."""
    good_image = {"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0}
    return [
        ("parent folder", ("raw", b"GET /static/../server.py HTTP/1.1\r\n" + auth + b"\r\n"), 404),
        ("parent folder at the root", ("raw", b"GET /../../../etc/passwd HTTP/1.1\r\n" + auth + b"\r\n"), 404),
        ("encoded dots", ("GET", "/static/%2e%2e/server.py", None), 404),
        ("encoded slash", ("GET", "/static/..%2fserver.py", None), 404),
        ("encoded absolute path", ("GET", "/static/%2fetc%2fpasswd", None), 404),
        ("absolute path", ("raw", b"GET //etc/passwd HTTP/1.1\r\n" + auth + b"\r\n"), 404),
        ("backslashes", ("raw", b"GET /static/..\\..\\server.py HTTP/1.1\r\n" + auth + b"\r\n"), 404),
        ("NUL", ("raw", b"GET /static/index.html\x00.js HTTP/1.1\r\n" + auth + b"\r\n"), 404),
        ("encoded NUL", ("GET", "/static/index.html%00.js", None), 404),
        ("a package file that is not the page's", ("GET", "/static/api.py", None), 404),
        ("unknown path", ("GET", "/nope", None), 404),
        ("unknown endpoint", ("POST", "/api/nope", {}), 404),
        ("POST to a GET endpoint", ("POST", "/api/info", {}), 405),
        ("body over 1 MB", ("raw", b"POST /api/convolve HTTP/1.1\r\n" + auth + b"Content-Length: "
                            + str(MAX_BODY + 1).encode() + b"\r\n\r\n{\"image\": "), 413),
        ("body of 1 MB + 1 sent in full", ("POST", "/api/convolve", big), 413),
        ("body of 100 MB announced, 1 MB sent", ("raw", b"POST /api/convolve HTTP/1.1\r\n" + auth + b"Content-Length: "
                                                + str(100 * MAX_BODY).encode() + b"\r\n\r\n" + b"x" * MAX_BODY), 413),
        ("no Content-Length", ("raw", b"POST /api/convolve HTTP/1.1\r\n" + auth + b"\r\n"), 411),
        ("chunked body", ("raw", b"POST /api/convolve HTTP/1.1\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n"), 411),
        ("Content-Length not a number", ("raw", b"POST /api/convolve HTTP/1.1\r\n" + auth + b"Content-Length: -5\r\n\r\n"), 400),
        ("malformed request line", ("raw", b"NONSENSE\r\n\r\n"), 400),
        ("malformed JSON", ("POST", "/api/convolve", "{\"image\": [[1, 2]"), 400),
        ("not UTF-8", ("POST", "/api/convolve", b"\xff\xfe{}"), 400),
        ("JSON but not an object", ("POST", "/api/convolve", [1, 2, 3]), 400),
        ("NaN", ("POST", "/api/convolve", '{"image": [[NaN]], "kernel": [[1]], "stride": 1, "padding": 0}'), 400),
        ("Infinity", ("POST", "/api/convolve", '{"image": [[1]], "kernel": [[Infinity]], "stride": 1, "padding": 0}'), 400),
        ("a number too large for a float", ("POST", "/api/convolve",
                                            '{"image": [[1e400]], "kernel": [[1]], "stride": 1, "padding": 0}'), 400),
        ("deeply nested JSON", ("POST", "/api/convolve", "[" * 100000 + "]" * 100000), 400),
        ("missing field", ("POST", "/api/convolve", {"image": SMALL}), 400),
        ("ragged image", ("POST", "/api/convolve", {**good_image, "image": [[1, 2], [3]]}), 400),
        ("image of strings", ("POST", "/api/convolve", {**good_image, "image": [["1", "2"]]}), 400),
        ("kernel too large", ("POST", "/api/convolve", {**good_image, "kernel": [[1] * 9] * 9}), 400),
        ("image too large", ("POST", "/api/convolve", {**good_image, "image": [[1] * 17] * 17}), 400),
        ("stride 0", ("POST", "/api/convolve", {**good_image, "stride": 0}), 400),
        ("stride 1.5", ("POST", "/api/convolve", {**good_image, "stride": 1.5}), 400),
        ("stride true", ("POST", "/api/convolve", {**good_image, "stride": True}), 400),
        ("padding 99", ("POST", "/api/convolve", {**good_image, "padding": 99}), 400),
        ("negative padding", ("POST", "/api/convolve", {**good_image, "padding": -1}), 400),
        ("predict: not base64", ("POST", "/api/predict", {"png": "data:image/png;base64,@@@"}), 400),
        ("predict: not a PNG", ("POST", "/api/predict", {"png": "data:image/png;base64,aGVsbG8="}), 400),
        ("predict: a blank drawing", ("POST", "/api/predict", {"png": png_data_url(np.zeros((28, 28)))}), 400),
        ("predict: a number", ("POST", "/api/predict", {"png": 5}), 400),
        ("kernel: not a convolution", ("POST", "/api/kernel", {"layer": 1, "filter": 0}), 400),
        ("kernel: filter out of range", ("POST", "/api/kernel", {"layer": 0, "filter": 99}), 400),
        ("train: unknown task", ("POST", "/api/train/new", {"task": "cifar", "seed": 0, "lr": 0.1}), 400),
        ("train: learning rate 5", ("POST", "/api/train/new", {"task": "sobel", "seed": 0, "lr": 5}), 400),
        ("train: negative seed", ("POST", "/api/train/new", {"task": "sobel", "seed": -1, "lr": 0.1}), 400),
        ("train: a million steps", ("POST", "/api/train/step", {"session": "1", "steps": 10**6}), 400),
        ("train: unknown session", ("POST", "/api/train/step", {"session": "no-such", "steps": 1}), 404),
        ("timeline: unknown session", ("POST", "/api/train/at", {"session": "no-such", "step": 0}), 404),
        ("backward: a 5x5 kernel", ("POST", "/api/backward", {"image": SMALL, "kernel": [[1] * 5] * 5, "lr": 0.05}), 400),
        ("backward: a 2x2 image", ("POST", "/api/backward", {"image": [[1, 2], [3, 4]], "kernel": SOBEL_X, "lr": 0.05}), 400),
        ("backward: a null cell", ("POST", "/api/backward", {"image": [[1, None, 3]] * 3, "kernel": SOBEL_X, "lr": 0.05}), 400),
        ("backward: lr 0", ("POST", "/api/backward", {"image": SMALL, "kernel": SOBEL_X, "lr": 0}), 400),
        ("backward: 10**6 SGD steps", ("POST", "/api/backward", {"image": SMALL, "kernel": SOBEL_X, "lr": 0.05,
                                                                  "sgd_steps": 10**6}), 400),
        ("backward: a diverging lr", ("POST", "/api/backward", {"image": SMALL, "kernel": [[1, 0, -1]] * 3, "lr": 1,
                                                                 "sgd_steps": 100}), 400),
        ("backward: nudge a cell outside", ("POST", "/api/backward", {"image": SMALL, "kernel": SOBEL_X, "lr": 0.05,
                                                                       "nudge": {"row": 3, "col": 0, "eps": 1e-3}}), 400),
    ]


def test_bad_requests_get_their_status_and_the_server_goes_on(studio_client, capsys):
    big = b'{"image": "' + b"x" * MAX_BODY + b'"}'
    cases = _bad_requests(big, studio_client.auth)
    for what, how, expected in cases:
        if how[0] == "raw":
            status = studio_client.raw(how[1])
        else:
            method, path, body = how
            status, answer = (studio_client.get(path) if method == "GET" else studio_client.post(path, body))
            assert isinstance(answer, dict) and answer["status"] == expected and answer["error"], what
        assert status == expected, what
        status, info = studio_client.get("/api/info")
        assert status == 200 and info["checkpoint"], f"no answer after: {what}"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("studio: ")]
    assert len(lines) == len(cases), err  # one line per error


def test_a_diverging_run_says_so_and_the_session_stays_usable(studio_client):
    status, r = studio_client.post("/api/train/new", {"task": "sobel", "seed": 0, "lr": 1.0})
    for _ in range(20):
        status, answer = studio_client.post("/api/train/step", {"session": r["session"], "steps": 50})
        if status != 200:
            break
    assert status == 400 and "learning rate" in answer["error"]


def test_without_a_checkpoint_the_stepper_and_training_work(start_studio):
    client = start_studio(None)
    status, info = client.get("/api/info")
    assert status == 200 and info["checkpoint"] is None and "minicnn train" in info["hint"]
    status, r = client.post("/api/convolve", {"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0})
    assert status == 200 and r["fits"]
    status, r = client.post("/api/train/new", {"task": "sobel", "seed": 0, "lr": 0.2})
    assert status == 200
    status, r = client.post("/api/predict", {"png": png_data_url(np.eye(28) * 255)})
    assert status == 409 and "minicnn train" in r["error"]


def test_the_command_serves_warns_on_a_public_address_and_stops_on_ctrl_c(tmp_path):
    """From a folder without runs/mnist: it says how to make a checkpoint, warns about 0.0.0.0 and --no-token,
    answers the names it was told to, stops cleanly."""
    # a background job starts with SIGINT ignored: the child gets Python's own handler back first
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from minicnn.__main__ import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, "studio", "--host", "0.0.0.0", "--port", "0", "--no-browser",
                             "--allow-host", "Studio.LAN", "--no-token"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while not any("serving" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"the studio ended early: {lines} {proc.stderr.read()}"
            lines.append(line)
        url = lines[-1].split("serving ", 1)[1].split()[0]
        port = urllib.parse.urlsplit(url).port
        assert url == f"http://127.0.0.1:{port}/"   # no token asked for
        for host, expected in ((f"studio.lan:{port}", 200), (f"127.0.0.1:{port}", 200), (f"evil.example:{port}", 403)):
            request = urllib.request.Request(url + "api/info", headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status == expected, host
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    out = "".join(lines) + out
    assert "minicnn train" in out and "stopped" in out and "studio.lan" in out
    assert "WARNING" in err and "anyone" in err and "--no-token" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_command_prints_the_token_link_and_refuses_a_bad_host_name(tmp_path, capsys):
    from minicnn.studio.server import main

    assert main(["--allow-host", "evil.example:80", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "--allow-host expects a host name" in err and len(err.strip().splitlines()) == 1
    proc, lines, url = _start_command(tmp_path)
    proc.terminate()
    proc.communicate(timeout=30)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{32}", url), url


# ---------------------------------------------------------------- safe to leave open (issue 23)

def test_info_names_the_checkpoint_file_not_where_it_lives(studio_client, trained_run):
    status, info = studio_client.get("/api/info")
    assert status == 200 and info["checkpoint"] == "checkpoint.npz"
    assert str(trained_run) not in json.dumps(info)


def test_session_ids_cannot_be_guessed(studio_client):
    ids = [studio_client.post("/api/train/new", {"task": "sobel", "seed": 0, "lr": 0.2})[1]["session"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(len(i) >= 20 and not i.isdigit() for i in ids)
    for guess in ["0", "1", "2", "3", "10", "-1"]:
        status, answer = studio_client.post("/api/train/step", {"session": guess, "steps": 1})
        assert status == 404 and "no training session" in answer["error"], guess


def _png_of_size(side):
    """A black PNG of side x side pixels: a few KB that decode to side**2 bytes and more."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_a_huge_drawing_is_refused_from_its_header_before_any_pixel_is_decoded(studio_client, capsys):
    """A 4096x4096 PNG (16 KB) took +335 MB when decoded before being refused; one of 5000x5000 made Pillow warn."""
    pictures = {side: _png_of_size(side) for side in (4096, 5000, 1025)}
    answers = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        tracemalloc.start()
        try:
            for side, url in pictures.items():
                for endpoint in ("/api/predict", "/api/crop"):
                    tracemalloc.reset_peak()
                    answers.append((side, endpoint, *studio_client.post(endpoint, {"png": url}),
                                    tracemalloc.get_traced_memory()[1]))
        finally:
            tracemalloc.stop()
    for side, endpoint, status, answer, peak in answers:
        # the server runs in this process: its threads' allocations are traced (a 4096**2 float64 picture is 128 MB)
        assert peak < 8 * 2**20, f"{side}x{side} to {endpoint}: {peak / 2**20:.1f} MB traced while refusing it"
        assert status == 400, (side, endpoint)
        assert f"is {side}x{side} pixels" in answer["error"] and "at most 1024x1024" in answer["error"]
    assert not [w for w in seen if "DecompressionBomb" in w.category.__name__], [str(w.message) for w in seen]
    assert "DecompressionBomb" not in capsys.readouterr().err
    # a drawing of the largest size accepted is still read
    status, _ = studio_client.post("/api/crop", {"png": png_data_url(np.eye(256) * 255, scale=4)})
    assert status == 200


def test_at_most_two_heavy_requests_run_at_once_and_the_others_get_503(studio_client, monkeypatch):
    monkeypatch.setattr(server, "HEAVY_WAIT", 0.3)
    running, most, lock = [0], [0], threading.Lock()

    def slow_crop(body):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(1.5)
        with lock:
            running[0] -= 1
        return {"image": []}

    monkeypatch.setitem(studio_client.studio.routes, ("POST", "/api/crop"), slow_crop)
    answers = [None] * 5

    def ask(k):
        answers[k] = (*studio_client.post("/api/crop", {"png": ""}), studio_client.last_headers.get("Retry-After"))

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200, 200, 503, 503, 503] and most[0] == 2
    busy = [a for a in answers if a[0] == 503]
    assert all(a[2] == str(server.RETRY_AFTER) and "busy" in a[1]["error"] for a in busy)
    # a light request is never kept waiting by heavy ones
    assert studio_client.post("/api/convolve", {"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0})[0] == 200


def _closed_within(sock, seconds):
    """Read until the server closes ``sock``: the seconds it took (None if still open after ``seconds``)."""
    start = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except socket.timeout:
            pass
        except ConnectionError:
            return time.monotonic() - start
    return None


@pytest.mark.parametrize("part", ["request line", "headers", "body"])
def test_a_trickling_client_has_a_deadline_for_the_whole_request(studio_client, monkeypatch, part):
    """One byte every 0.2 s kept a connection open for ever: the 10 s timeout was per read (here 1 s in all)."""
    monkeypatch.setattr(server, "REQUEST_SECONDS", 1.0)
    body = json.dumps({"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0}).encode()
    head = b"POST /api/convolve HTTP/1.1\r\n" + studio_client.auth + f"Content-Length: {len(body)}\r\n\r\n".encode()
    request = head + body
    at = {"request line": 5, "headers": len(head) - 10, "body": len(head) + 5}[part]
    with socket.create_connection((studio_client.host, studio_client.port), timeout=5) as s:
        s.sendall(request[:at])
        start = time.monotonic()
        closed = None
        for byte in request[at:]:
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - start
                break
            time.sleep(0.2)
            if time.monotonic() - start > 4:
                break
        closed = closed or _closed_within(s, 1.0)
        closed = closed and min(closed, time.monotonic() - start)
    assert closed is not None and closed < 2.5, f"still open after {time.monotonic() - start:.1f} s"
    assert studio_client.get("/api/info")[0] == 200


def test_at_most_64_connections_are_open_at_once(studio_client):
    held = []
    try:
        for _ in range(server.MAX_CONNECTIONS):
            s = socket.create_connection((studio_client.host, studio_client.port), timeout=5)
            s.sendall(b"GET /api/info HTTP/1.1\r\n")   # a request begun, never finished
            held.append(s)
        deadline = time.monotonic() + 10
        while len(getattr(studio_client.server, "_open", ())) < server.MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.create_connection((studio_client.host, studio_client.port), timeout=5) as extra:
            extra.settimeout(3)
            try:
                reply = extra.recv(4096)
            except ConnectionResetError:
                reply = b""
            except socket.timeout:
                reply = None   # let in, and kept waiting
        assert reply == b"" or (reply or b"").startswith(b"HTTP/1.1 503"), f"connection 65 got {reply!r}"
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while studio_client.server._open and time.monotonic() < deadline:
        time.sleep(0.02)
    assert studio_client.get("/api/info")[0] == 200


@pytest.mark.parametrize("length", ["\u00b2", "\u0663", "1_0", "+5", "0x10", "5 5", "", "1" * 40, "\uff15"])
def test_content_length_must_be_ascii_digits(studio_client, capsys, length):
    """``Content-Length: \u00b2`` (a Unicode digit) was a 500."""
    head = b"POST /api/convolve HTTP/1.1\r\n" + studio_client.auth + b"Content-Length: " + length.encode() + b"\r\n\r\n"
    assert studio_client.raw(head + b"{}") == 400
    assert studio_client.raw(head.replace(b"POST", b"GET", 1)) == 400
    assert "internal error" not in capsys.readouterr().err
    assert studio_client.get("/api/info")[0] == 200


def test_what_a_client_sends_reaches_the_log_escaped(studio_client, capsys):
    escape = b"\x1b[2J\x1b]0;owned\x07"
    studio_client.raw(escape + b"GET / HTTP/1.1\r\n" + studio_client.auth + b"\r\n")          # the method
    studio_client.raw(b"GET /\x1b[31m HTTP/1.1\r\n" + studio_client.auth + b"\r\n")            # the path
    studio_client.raw(b"GET / HTTP/1.1\r\nHost: \x1b[31mevil\x9b\r\n\r\n")                    # the Host
    studio_client.raw(b"GET /api/info HTTP/1.1\r\n" + studio_client.auth + b"Origin: \x1b[5m\r\n\r\n")
    studio_client.raw(b"POST /api/convolve HTTP/1.1\r\n" + studio_client.auth + b"Content-Length: 9\x1b\r\n\r\n")
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 5, err
    assert all(ch.isprintable() for line in lines for ch in line), err
    assert err.count("\\x1b") >= 5 and "\\x9b" in err


def _start_command(tmp_path, *options):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "import sys; from minicnn.__main__ import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "studio", "--port", "0", "--no-browser", *options],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    while not any("serving" in line for line in lines):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"the studio ended early: {lines} {proc.communicate()}")
        lines.append(line)
    return proc, lines, lines[-1].split("serving ", 1)[1].split()[0]


def test_sigterm_stops_it_like_ctrl_c(tmp_path):
    """SIGTERM killed it at once, without a word; now: "stopped", exit 0, the port free, nothing left in the folder."""
    proc, lines, url = _start_command(tmp_path)
    try:
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
        request = urllib.request.Request(f"http://{parts.netloc}/api/info", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        idle = socket.create_connection((parts.hostname, parts.port))   # a connection still open when it stops
        idle.sendall(b"GET / HTTP/1.1\r\n")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        idle.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, err)
    assert "stopped" in out and "Traceback" not in err
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", parts.port))
    assert list(tmp_path.iterdir()) == []


def test_every_answer_names_the_engine_that_computed_it(start_studio, trained_run, mnist_root):
    digit, _ = _test_digit(mnist_root, 3)
    answers = {}
    for engine in ("fast", "textbook", "loops"):
        client = start_studio(trained_run / "checkpoint.npz", mnist_root, engine=engine)
        status, info = client.get("/api/info")
        assert status == 200 and info["engine"].split(" ")[0] == engine
        status, answers[engine] = client.post("/api/predict", {"png": png_data_url(digit)})
        assert status == 200 and answers[engine]["engine"].split(" ")[0] == engine
    assert answers["loops"]["engine"].startswith("loops (textbook: ")          # what loops lack, the textbook ran
    for engine in ("textbook", "loops"):                                      # the same numbers, other code
        np.testing.assert_allclose([t["probability"] for t in answers[engine]["top"]],
                                   [t["probability"] for t in answers["fast"]["top"]], atol=1e-5)
    with pytest.raises(ValueError, match="engine must be one of"):
        api.Studio(None, engine="gpu")
