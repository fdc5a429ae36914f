"""Fashion-MNIST: verification, the order of the sources (present, official site, Debian package), the fetch command.

Most tests use a tiny fake data set (the expected shapes, digests and label
counts monkeypatched to match it), a local HTTP server standing in for the
official site and a .deb built here standing in for ``apt-get download``.
Tests named ``*_fetched*`` use the one real fetch (fixture ``fashion_fetched``
in conftest.py, marked ``network``).
"""
import dataclasses
import functools
import gzip
import hashlib
import http.server
import subprocess
import threading

import numpy as np
import pytest

from minicnn.data import fashion_mnist as fm
from minicnn.data import fetch as fetch_cmd
from minicnn.data.idx import idx_bytes, read_idx, write_idx
from minicnn.data.verified import KEYS
from tests.data.test_deb import make_deb


def _fake_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"train_images": rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
            "train_labels": np.repeat(np.arange(10, dtype=np.uint8), 2)[rng.permutation(20)],
            "test_images": rng.integers(0, 256, (10, 4, 4), dtype=np.uint8),
            "test_labels": rng.permutation(10).astype(np.uint8)}


FAKE = _fake_arrays()
FAKE_GZ = {key: gzip.compress(idx_bytes(a), mtime=0) for key, a in FAKE.items()}


@pytest.fixture
def tiny(monkeypatch):
    """Fashion-MNIST's expectations replaced by those of the fake arrays; the sources made inert until a test sets them."""
    spec = dataclasses.replace(fm.FASHION_MNIST, shapes={k: a.shape for k, a in FAKE.items()},
                               sha256={k: hashlib.sha256(a.tobytes()).hexdigest() for k, a in FAKE.items()},
                               label_counts={"train_labels": (2,) * 10, "test_labels": (1,) * 10})
    monkeypatch.setattr(fm, "FASHION_MNIST", spec)
    monkeypatch.setattr(fm, "OFFICIAL_BASE", "http://127.0.0.1:9/unused/")  # discard port: refused at once
    monkeypatch.setattr(fm, "apt_get_download", _no_apt)
    return spec


def _no_apt(package, dest):
    raise RuntimeError("apt-get download was not expected in this test")


def _fake_apt(calls, files=None):
    files = files or FAKE_GZ

    def apt_get_download(package, dest):
        calls.append(package)
        return make_deb(dest / f"{package}_1.0_all.deb",
                        {f"./usr/share/datasets/fashion-mnist/{fm.FASHION_FILES[k]}": data for k, data in files.items()})
    return apt_get_download


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / 'site'``; yields (base URL, folder, request log)."""
    site = tmp_path / "site"
    site.mkdir()
    log = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            log.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", site, log
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _publish(site, files=None):
    for key, data in (files or FAKE_GZ).items():
        (site / fm.FASHION_FILES[key]).write_bytes(data)


def _assert_fake_on_disk(root):
    arrays = fm.load_fashion_mnist(root, download=False)
    for key, array in zip(KEYS, arrays):
        np.testing.assert_array_equal(array, FAKE[key])


# ------------------------------------------------------------ the constants

def test_constants_describe_fashion_mnist():
    assert fm.CLASS_NAMES == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                              "Bag", "Ankle boot")
    assert (fm.FASHION_MEAN, fm.FASHION_STD) == (0.2860, 0.3530)
    assert fm.FASHION_LABEL_COUNTS == {"train_labels": (6000,) * 10, "test_labels": (1000,) * 10}
    assert fm.OFFICIAL_BASE == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert fetch_cmd.DATASETS["mnist"].spec.class_names == tuple("0123456789")


def test_normalize_uses_fashion_mean_and_std():
    out = fm.normalize(np.array([[[0, 255]]], dtype=np.uint8))
    assert out.dtype == np.float32 and out.shape == (1, 1, 1, 2)
    np.testing.assert_allclose(out.ravel(), (np.array([0, 1]) - 0.2860) / 0.3530, rtol=1e-6)


# ------------------------------------------------------- verification, load

def test_load_reads_verified_files(tiny, tmp_path):
    for key, array in FAKE.items():
        write_idx(tmp_path / fm.FASHION_FILES[key], array)
    _assert_fake_on_disk(tmp_path)


def test_wrong_digest_is_refused_and_names_the_file(tiny, tmp_path):
    for key, array in FAKE.items():
        write_idx(tmp_path / fm.FASHION_FILES[key], array)
    bad = FAKE["test_images"].copy()
    bad[0, 0, 0] ^= 1                                               # one bit of one pixel
    write_idx(tmp_path / fm.FASHION_FILES["test_images"], bad)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: content does not match Fashion-MNIST: "
                                         r"SHA-256(.|\n)*fetch fashion-mnist --root"):
        fm.load_fashion_mnist(tmp_path)                             # download=True: still never replaced by a load
    assert np.array_equal(read_idx(tmp_path / fm.FASHION_FILES["test_images"]), bad)


def test_label_counts_are_checked_besides_the_digest(tiny, monkeypatch, tmp_path):
    monkeypatch.setattr(fm, "FASHION_MNIST", dataclasses.replace(
        tiny, label_counts={"train_labels": (2,) * 10, "test_labels": (2,) * 5 + (0,) * 5}))
    for key, array in FAKE.items():
        write_idx(tmp_path / fm.FASHION_FILES[key], array)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: label counts \(1, 1, 1, 1, 1, 1, 1, 1, 1, 1\), "
                                         r"expected \(2, 2, 2, 2, 2, 0, 0, 0, 0, 0\)"):
        fm.load_fashion_mnist(tmp_path, download=False)


def test_real_digests_refuse_the_fake_data(tmp_path):
    for key, array in FAKE.items():
        write_idx(tmp_path / fm.FASHION_FILES[key], array)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected shape \(60000, 28, 28\), got \(20, 4, 4\)"):
        fm.load_fashion_mnist(tmp_path, download=False)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"Fashion-MNIST files missing in .*: train-images-idx3-ubyte\.gz(.|\n)*"
                                         r"fetch fashion-mnist"):
        fm.load_fashion_mnist(tmp_path, download=False)


# ------------------------------------------------------- the order of the sources

def test_present_files_are_kept_and_no_source_is_asked(tiny, tmp_path, capsys):
    for key, data in FAKE_GZ.items():
        (tmp_path / fm.FASHION_FILES[key]).write_bytes(data)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert fetch_cmd.main(["fashion-mnist", "--root", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "source: present; wrote 0 file(s)" in out and out.count("  ok") == 4
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


def test_official_site_comes_before_the_debian_package(tiny, server, monkeypatch, tmp_path):
    base, site, log = server
    _publish(site)
    monkeypatch.setattr(fm, "OFFICIAL_BASE", base)
    report = fm.fetch_fashion_mnist(tmp_path / "fm", progress=False)
    assert report["source"] == f"official site {base}" and report["failed"] == []
    assert sorted(log) == sorted(f"/{name}" for name in fm.FASHION_FILES.values())
    assert report["written"] == list(fm.FASHION_FILES.values())
    for key in KEYS:                                                # the files as served, byte for byte
        assert (tmp_path / "fm" / fm.FASHION_FILES[key]).read_bytes() == FAKE_GZ[key]
    _assert_fake_on_disk(tmp_path / "fm")


def test_unreachable_official_site_falls_back_to_the_debian_package(tiny, monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(fm, "apt_get_download", _fake_apt(calls))
    assert fetch_cmd.main(["fashion-mnist", "--root", str(tmp_path / "fm"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert calls == ["dataset-fashion-mnist"]
    assert "source: Debian package dataset-fashion-mnist; wrote 4 file(s)" in captured.out
    assert "official site http://127.0.0.1:9/unused/ failed (" in captured.err and "trying the next source" in captured.err
    _assert_fake_on_disk(tmp_path / "fm")
    assert sorted(p.name for p in (tmp_path / "fm").iterdir()) == sorted(fm.FASHION_FILES.values())  # no temp files


def test_a_wrong_file_from_the_official_site_is_never_used(tiny, server, monkeypatch, tmp_path, capsys):
    base, site, _ = server
    wrong = dict(FAKE_GZ, train_labels=idx_bytes(np.roll(FAKE["train_labels"], 1)))
    _publish(site, wrong)
    monkeypatch.setattr(fm, "OFFICIAL_BASE", base)
    calls = []
    monkeypatch.setattr(fm, "apt_get_download", _fake_apt(calls))
    report = fm.fetch_fashion_mnist(tmp_path / "fm", progress=False)
    assert report["source"] == "Debian package dataset-fashion-mnist" and calls == ["dataset-fashion-mnist"]
    assert report["failed"] == [f"official site {base}: {base}train-labels-idx1-ubyte.gz: content does not match "
                                f"Fashion-MNIST: SHA-256 of the decoded array is "
                                f"{hashlib.sha256(np.roll(FAKE['train_labels'], 1).tobytes()).hexdigest()}, "
                                f"expected {tiny.sha256['train_labels']}"]
    assert report["written"] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    _assert_fake_on_disk(tmp_path / "fm")                            # the served wrong labels were replaced


def test_when_every_source_fails_the_error_lists_each(tiny, monkeypatch, tmp_path, capsys):
    calls = []
    bad = dict(FAKE_GZ, test_images=idx_bytes(FAKE["test_images"][::-1]))
    monkeypatch.setattr(fm, "apt_get_download", _fake_apt(calls, bad))
    assert fetch_cmd.main(["fashion-mnist", "--root", str(tmp_path / "fm"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "minicnn fetch: error: Fashion-MNIST: no source gave verified files for t10k-images-idx3-ubyte.gz" in err
    assert "\n  official site http://127.0.0.1:9/unused/: " in err
    assert ("\n  Debian package dataset-fashion-mnist: dataset-fashion-mnist_1.0_all.deb!usr/share/datasets/"
            "fashion-mnist/t10k-images-idx3-ubyte.gz: content does not match Fashion-MNIST") in err
    assert not (tmp_path / "fm" / "t10k-images-idx3-ubyte.gz").exists()


def test_from_url_replaces_the_default_sources(tiny, server, tmp_path):
    base, site, log = server
    _publish(site)
    report = fm.fetch_fashion_mnist(tmp_path / "fm", from_url=base + "mirror/../", progress=False)
    assert report["source"] == base + "mirror/../" and len(log) == 4   # neither the official site nor apt was asked
    _assert_fake_on_disk(tmp_path / "fm")
    with pytest.raises(RuntimeError, match=r"/missing/train-images-idx3-ubyte\.gz: download failed"):
        fm.fetch_fashion_mnist(tmp_path / "other", from_url=base + "missing", progress=False)


def test_a_damaged_present_file_is_replaced_by_fetch(tiny, tmp_path, monkeypatch):
    for key, data in FAKE_GZ.items():
        (tmp_path / fm.FASHION_FILES[key]).write_bytes(data)
    (tmp_path / fm.FASHION_FILES["train_images"]).write_bytes(FAKE_GZ["train_images"][:-4])   # cut short
    monkeypatch.setattr(fm, "apt_get_download", _fake_apt([]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: gzip stream is truncated"):
        fm.load_fashion_mnist(tmp_path)
    report = fm.fetch_fashion_mnist(tmp_path, progress=False)
    assert report["written"] == ["train-images-idx3-ubyte.gz"]
    _assert_fake_on_disk(tmp_path)


# ----------------------------------------------------------- apt-get download

def test_apt_get_missing_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(fm.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"apt-get not found: the Debian package dataset-fashion-mnist needs a "
                                           r"Debian or Ubuntu system"):
        fm.apt_get_download("dataset-fashion-mnist", tmp_path)


@pytest.mark.parametrize("stderr", ["E: Unable to locate package dataset-fashion-mnist",
                                    "E: Can't select candidate version from package dataset-fashion-mnist"])
def test_missing_package_lists_say_run_apt_get_update(monkeypatch, tmp_path, stderr):
    def fake_run(cmd, **kwargs):
        assert cmd[1:] == ["download", "dataset-fashion-mnist"] and kwargs["cwd"] == tmp_path
        return subprocess.CompletedProcess(cmd, 100, stdout="", stderr=stderr)

    monkeypatch.setattr(fm.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(fm.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match=r"package lists are missing or old; run 'apt-get update'"):
        fm.apt_get_download("dataset-fashion-mnist", tmp_path)


def test_other_apt_failures_show_their_message(monkeypatch, tmp_path):
    monkeypatch.setattr(fm.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(fm.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 100, stdout="", stderr="Err:1 http://deb.debian.org\nE: Failed to fetch x  Temporary failure resolving"))
    with pytest.raises(RuntimeError, match=r"failed with exit code 100: Err:1 .* / E: Failed to fetch x"):
        fm.apt_get_download("dataset-fashion-mnist", tmp_path)


# ------------------------------------ the real fetch (one download per session)

def test_fetched_fashion_mnist_verifies(fashion_fetched):
    report = fashion_fetched
    assert report["source"] in (f"official site {fm.OFFICIAL_BASE}", "Debian package dataset-fashion-mnist")
    assert report["sha256"] == fm.FASHION_SHA256 and report["written"] == list(fm.FASHION_FILES.values())
    x_train, y_train, x_test, y_test = fm.load_fashion_mnist(report["root"], download=False)
    # independent of the digests: the well-known first labels, and the pixel statistics
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    pixels = x_train.astype(np.float64) / 255
    assert round(pixels.mean(), 4) == fm.FASHION_MEAN and round(pixels.std(), 4) == fm.FASHION_STD
    print(f"real Fashion-MNIST fetch ({report['source']}) took {report['seconds']:.1f} s")


def test_fashion_root_float_view_for_training(fashion_root):
    x_train, y_train, x_test, y_test = fm.load_fashion_mnist_float(fashion_root, download=False)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert abs(float(x_train.mean())) < 1e-3 and abs(float(x_train.std()) - 1) < 1e-3
