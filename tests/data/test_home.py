"""One data folder per user: $MINICNN_DATA, else $XDG_CACHE_HOME/minicnn, else ~/.cache/minicnn; 0.1's ./datasets still read."""
import os
import shutil
from pathlib import Path

import pytest

from minicnn.data import fetch as fetch_cmd
from minicnn.data import home
from minicnn.data.home import data_home, dataset_root
from minicnn.data.mnist import MNIST, MNIST_FILES, load_mnist


@pytest.fixture
def fresh(monkeypatch):
    """No announcement made yet in this process, and no data-folder variables."""
    monkeypatch.setattr(home, "_told", set())
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_the_data_folder_follows_the_environment(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert data_home() == tmp_path / "me" / ".cache" / "minicnn"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")                    # not absolute: ignored, as XDG says
    assert data_home() == tmp_path / "me" / ".cache" / "minicnn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "minicnn"
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"
    assert dataset_root(MNIST) == tmp_path / "mine" / "mnist"
    assert dataset_root(MNIST, "elsewhere") == Path("elsewhere")          # --root / --data wins
    assert not (tmp_path / "mine").exists()                                 # asking creates nothing


def _fill(folder, content=b"x"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES.values():
        (folder / name).write_bytes(content)


def test_files_an_earlier_version_left_in_datasets_are_used_with_one_line(fresh, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "data"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert dataset_root(MNIST) == tmp_path / "data" / "mnist"               # nothing anywhere: the new default
    _fill(tmp_path / "work" / "datasets" / "mnist")
    assert dataset_root(MNIST).resolve() == tmp_path / "work" / "datasets" / "mnist"
    assert dataset_root(MNIST).resolve() == tmp_path / "work" / "datasets" / "mnist"
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err                                         # said once per process
    assert f"the default folder is now {tmp_path / 'data' / 'mnist'}" in err and "MINICNN_DATA" in err
    _fill(tmp_path / "data" / "mnist")                                       # the new folder, once complete, wins
    assert dataset_root(MNIST) == tmp_path / "data" / "mnist"


def test_an_incomplete_old_folder_is_not_used(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    _fill(tmp_path / "datasets" / "mnist")
    (tmp_path / "datasets" / "mnist" / MNIST_FILES["test_labels"]).unlink()
    assert dataset_root(MNIST) == tmp_path / "data" / "mnist"


def test_load_reads_the_data_folder_by_default(fresh, mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path))
    shutil.copytree(mnist_root, tmp_path / "mnist")
    monkeypatch.chdir(tmp_path / "mnist")
    assert load_mnist(download=False)[3].shape == (10000,)


def test_a_missing_data_set_names_the_command_not_a_python_argument(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path))
    with pytest.raises(ValueError) as info:
        load_mnist(download=False)
    message = str(info.value)
    assert f"MNIST files missing in {tmp_path / 'mnist'}" in message
    assert message.endswith("run 'minicnn fetch mnist' to get them") and "download=" not in message
    with pytest.raises(ValueError, match=r"run 'minicnn fetch mnist --root '?[^ ]*other'? to get them"):
        load_mnist(tmp_path / "other", download=False)


def test_fetch_where_prints_the_folders(fresh, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "d"))
    assert fetch_cmd.main(["--where"]) == 0
    assert fetch_cmd.main(["fashion-mnist", "--where"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "d"), str(tmp_path / "d" / "fashion-mnist")]
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit) as exit_info:
        fetch_cmd.main([])
    assert exit_info.value.code == 2 and "which data set? one of mnist, fashion-mnist" in capsys.readouterr().err


def test_fetch_from_a_read_only_folder_writes_into_the_data_folder(fresh, mnist_root, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o555)
    monkeypatch.chdir(work)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "d"))
    try:
        assert fetch_cmd.main(["mnist", "--from-url", mnist_root.resolve().as_uri(), "--no-progress"]) == 0
    finally:
        work.chmod(0o755)
    assert sorted(os.listdir(tmp_path / "d" / "mnist")) == sorted(MNIST_FILES.values())
    assert os.listdir(work) == []
    assert f"MNIST in {tmp_path / 'd' / 'mnist'}" in capsys.readouterr().out
