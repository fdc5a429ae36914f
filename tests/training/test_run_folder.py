"""One run per folder: the lock (held by a live process, gone with it), the clean-up, and the replacement."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.training.run_folder import LOCK_NAME, TRASH_NAME, FolderBusy, RunFolder

REPO = Path(__file__).resolve().parents[2]
FILES = ("checkpoint.npz", "metrics.json", "curves.png")


def hold(folder):
    """A child process holding ``folder`` until it is killed; returns it once it holds the lock."""
    code = ("import sys, time\nfrom minicnn.training.run_folder import RunFolder\n"
            f"with RunFolder({str(folder)!r}, {FILES!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline() == b"held\n"
    return proc


def test_a_second_run_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    proc = hold(tmp_path)
    try:
        with pytest.raises(FolderBusy, match=rf"{tmp_path} is in use by another run \(process {proc.pid} holds "):
            with RunFolder(tmp_path, FILES):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with RunFolder(tmp_path, FILES) as folder:     # SIGKILL: the kernel dropped the lock with the process
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n" and not folder.holds_run()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_refused_run_takes_nothing_from_the_folder(tmp_path):
    proc = hold(tmp_path)
    (tmp_path / ".checkpoint.npz.x1.tmp").write_bytes(b"being written by the live run")
    try:
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(FolderBusy):
            with RunFolder(tmp_path, FILES):
                pass
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    messages = []
    with RunFolder(tmp_path, FILES, log=messages.append):     # now nobody owns it: cleaned
        assert not (tmp_path / ".checkpoint.npz.x1.tmp").exists()
    assert messages == [f"removed {tmp_path / '.checkpoint.npz.x1.tmp'}, a temporary file left by a run killed "
                        f"while saving"]


def test_a_folder_created_for_a_run_that_wrote_nothing_is_removed(tmp_path):
    with RunFolder(tmp_path / "new", FILES):
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()


def old_run(folder):
    for name, content in zip(FILES, (b"old checkpoint", b"old metrics", b"old curves")):
        (folder / name).write_bytes(content)
    return {name: (folder / name).read_bytes() for name in FILES}


def test_replacement_keeps_the_old_run_until_the_new_checkpoint_is_in_place(tmp_path):
    old = old_run(tmp_path)
    with RunFolder(tmp_path, FILES) as folder:
        replacing = folder.replacing()
        assert {n: (tmp_path / n).read_bytes() for n in FILES} == old
        replacing.retire()
        assert sorted(p.name for p in (tmp_path / TRASH_NAME).iterdir()) == sorted(FILES)
        (tmp_path / "checkpoint.npz").write_bytes(b"new checkpoint")
        replacing.drop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


@pytest.mark.parametrize("new_checkpoint_written", [False, True])
def test_a_replacement_cut_short_by_a_kill_is_settled_by_the_next_run(tmp_path, new_checkpoint_written):
    old = old_run(tmp_path)
    with RunFolder(tmp_path, FILES) as folder:
        folder.replacing().retire()          # ... and the process dies here, or just after the rename
        if new_checkpoint_written:
            (tmp_path / "checkpoint.npz").write_bytes(b"new checkpoint")
    messages = []
    with RunFolder(tmp_path, FILES, log=messages.append):
        pass
    names = sorted(p.name for p in tmp_path.iterdir())
    if new_checkpoint_written:
        assert names == ["checkpoint.npz"] and (tmp_path / "checkpoint.npz").read_bytes() == b"new checkpoint"
        assert "the files of a run replaced by --overwrite" in messages[0]
    else:
        assert {n: (tmp_path / n).read_bytes() for n in FILES} == old and names == sorted(FILES)
        assert "put back the run" in messages[0]
