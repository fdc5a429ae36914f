"""``python -m minicnn fetch``: exit 2 like every command, and filesystem errors that name their file and fit advice."""
import errno
import tempfile

import pytest

from minicnn.data import fetch as fetch_cmd
from minicnn.data.mnist import MNIST_FILES
from minicnn.utils import files


def fetch(root, mirror):
    """Fetch MNIST into ``root`` from a local folder, as a mirror (file:// URL): no network."""
    return fetch_cmd.main(["mnist", "--root", str(root), "--from-url", mirror.as_uri(), "--no-progress"])


def test_a_local_mirror_works(mnist_root, tmp_path, capsys):
    assert fetch(tmp_path / "m", mnist_root) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(MNIST_FILES.values())


def test_a_root_below_a_file_is_exit_2_naming_it_with_fitting_advice(mnist_root, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    assert fetch(tmp_path / "afile" / "mnist", mnist_root) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Not a directory: {tmp_path / 'afile' / 'mnist'}" in err
    assert "a part of that path is a file, not a folder" in err and "again" not in err


@pytest.mark.parametrize("code, where, advice", [
    (errno.ENOSPC, "fsync", "the disk is full: free some space"),
    (errno.EROFS, "mkstemp", "that file system is read-only: choose a folder you can write to"),
    (errno.EACCES, "mkstemp", "you have no permission there"),
])
def test_a_failed_write_is_exit_2_naming_the_file_with_fitting_advice(mnist_root, tmp_path, capsys, monkeypatch,
                                                                       code, where, advice):
    def fail(*args, **kwargs):
        raise OSError(code, "simulated")          # as the OS raises it from a write or fsync: no file name
    monkeypatch.setattr(files.os if where == "fsync" else tempfile, where, fail)
    assert fetch(tmp_path / "m", mnist_root) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    named = next(name for name in MNIST_FILES.values() if name in err)      # the file being written
    assert f"simulated: {tmp_path / 'm' / named}" in err and f"({advice}" in err, err
