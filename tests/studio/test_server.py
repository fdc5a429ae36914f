"""The studio's endpoints through HTTP: a real server on a free port, in a thread, asked with the standard library."""
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from minicnn.analysis.common import Run
from minicnn.analysis.images import digit_image
from minicnn.analysis.predict import top_classes
from minicnn.data.fetch import DATASETS
from minicnn.studio import api
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


def _bad_requests(big):
    """(what, how to send it, expected status); ``how`` is ("raw", bytes) or (method, path, body)."""
    good_image = {"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0}
    return [
        ("parent folder", ("raw", b"GET /static/../server.py HTTP/1.1\r\nHost: x\r\n\r\n"), 404),
        ("parent folder at the root", ("raw", b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), 404),
        ("encoded dots", ("GET", "/static/%2e%2e/server.py", None), 404),
        ("encoded slash", ("GET", "/static/..%2fserver.py", None), 404),
        ("encoded absolute path", ("GET", "/static/%2fetc%2fpasswd", None), 404),
        ("absolute path", ("raw", b"GET //etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), 404),
        ("backslashes", ("raw", b"GET /static/..\\..\\server.py HTTP/1.1\r\nHost: x\r\n\r\n"), 404),
        ("NUL", ("raw", b"GET /static/index.html\x00.js HTTP/1.1\r\nHost: x\r\n\r\n"), 404),
        ("encoded NUL", ("GET", "/static/index.html%00.js", None), 404),
        ("a package file that is not the page's", ("GET", "/static/api.py", None), 404),
        ("unknown path", ("GET", "/nope", None), 404),
        ("unknown endpoint", ("POST", "/api/nope", {}), 404),
        ("POST to a GET endpoint", ("POST", "/api/info", {}), 405),
        ("body over 1 MB", ("raw", b"POST /api/convolve HTTP/1.1\r\nHost: x\r\nContent-Length: "
                            + str(MAX_BODY + 1).encode() + b"\r\n\r\n{\"image\": "), 413),
        ("body of 1 MB + 1 sent in full", ("POST", "/api/convolve", big), 413),
        ("body of 100 MB announced, 1 MB sent", ("raw", b"POST /api/convolve HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                                + str(100 * MAX_BODY).encode() + b"\r\n\r\n" + b"x" * MAX_BODY), 413),
        ("no Content-Length", ("raw", b"POST /api/convolve HTTP/1.1\r\nHost: x\r\n\r\n"), 411),
        ("chunked body", ("raw", b"POST /api/convolve HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n"), 411),
        ("Content-Length not a number", ("raw", b"POST /api/convolve HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"), 400),
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
    ]


def test_bad_requests_get_their_status_and_the_server_goes_on(studio_client, capsys):
    big = b'{"image": "' + b"x" * MAX_BODY + b'"}'
    cases = _bad_requests(big)
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
    assert status == 200 and info["checkpoint"] is None and "train_mnist.py" in info["hint"]
    status, r = client.post("/api/convolve", {"image": SMALL, "kernel": SOBEL_X, "stride": 1, "padding": 0})
    assert status == 200 and r["fits"]
    status, r = client.post("/api/train/new", {"task": "sobel", "seed": 0, "lr": 0.2})
    assert status == 200
    status, r = client.post("/api/predict", {"png": png_data_url(np.eye(28) * 255)})
    assert status == 409 and "train_mnist.py" in r["error"]


def test_the_command_serves_warns_on_a_public_address_and_stops_on_ctrl_c(tmp_path):
    """From a folder without runs/mnist: it says how to make a checkpoint, warns about 0.0.0.0, stops cleanly."""
    # a background job starts with SIGINT ignored: the child gets Python's own handler back first
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from minicnn.__main__ import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, "studio", "--host", "0.0.0.0", "--port", "0", "--no-browser"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while not any("serving" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"the studio ended early: {lines} {proc.stderr.read()}"
            lines.append(line)
        url = lines[-1].split("serving ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "api/info", timeout=30) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "train_mnist.py" in "".join(lines) and "stopped" in out
    assert "WARNING" in err and "anyone" in err and "Traceback" not in err
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
