"""One run per folder: an exclusive lock, the clean-up of what killed runs left, and a replacement that loses nothing.

``RunFolder(out, files)`` is a context manager for a training run's output folder:

- on entry it creates the folder if needed and takes an exclusive lock on it,
  ``fcntl.flock`` on ``out/.minicnn.lock``, holding it until exit.  A second run
  into the same folder gets ``FolderBusy``, naming the process that holds the
  lock.  The kernel drops the lock when its process ends, however it ends
  (SIGKILL included), so a lock is never stale;
- holding the lock, it finishes or undoes a replacement a killed run left half
  done (see below), then deletes the temporary files (``.<name>.*.tmp``) that
  interrupted atomic writes of the run's ``files`` left: no live run owns them,
  since no other run can hold the folder;
- ``replacing()`` gives the object ``train_resumable`` uses so that
  ``--overwrite`` replaces the old run only on success: the old run's files stay
  until the new run's first checkpoint is completely written; then, right before
  that checkpoint is renamed into place, they are renamed into ``out/.replaced``
  (the old checkpoint first), and right after, that folder is deleted.  Each
  rename is atomic.  A crash between those steps is settled by the next run
  into the folder: with no checkpoint in the folder the old run is put back;
  with one, it can only be the new run's, and the old files are deleted.  So
  the folder holds the old run or the new one, never a mix;
- on exit it releases the lock (and removes the lock file, and the folder when
  this run created it and left nothing in it).
"""
import errno
import fcntl
import os
import shutil
from pathlib import Path

from minicnn.utils.files import remove_stale_temporaries

LOCK_NAME = ".minicnn.lock"
TRASH_NAME = ".replaced"


class FolderBusy(RuntimeError):
    """Another live process holds the run folder (``pid``: its process id, None when it could not be read)."""

    def __init__(self, folder, pid):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{folder} is in use by another run ({holder} holds {Path(folder) / LOCK_NAME}); "
                         f"wait for it to end, or stop it, or give another --out")
        self.folder, self.pid = folder, pid


def _holder(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def lock_folder(folder):
    """Take the exclusive lock on ``folder``; returns the lock file's descriptor. ``FolderBusy`` when held."""
    path = Path(folder) / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusy(folder, pid) from None
            raise
        # The last holder may have removed the file between our open and our lock: then we hold a lock on a
        # file nobody else will ever see; try again on the one that is there now.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_folder(folder, fd):
    """Remove the lock file while still holding it (whoever opened it meanwhile retries), then release it."""
    try:
        (Path(folder) / LOCK_NAME).unlink(missing_ok=True)
    finally:
        os.close(fd)


class RunFolder:
    """A run's output folder, held exclusively from ``__enter__`` to ``__exit__`` (see the module docstring).

    Parameters
    ----------
    out : the folder (created when missing)
    files : names of the run's files in it, e.g. ``("checkpoint.npz", "metrics.json", "curves.png")``;
            the first is the checkpoint
    log : callable(str) told what start-up cleaned or restored
    """

    def __init__(self, out, files, log=print):
        self.out, self.files, self.log = Path(out), tuple(files), log
        self.checkpoint = self.out / self.files[0]
        self.trash = self.out / TRASH_NAME
        self._fd = None
        self._created = False

    def __enter__(self):
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = lock_folder(self.out)
            self._settle_replacement()
            for name in self.files:
                for stale in remove_stale_temporaries(self.out / name):
                    self.log(f"removed {stale}, a temporary file left by a run killed while saving")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            unlock_folder(self.out, self._fd)
            self._fd = None
        if self._created:
            try:
                self.out.rmdir()    # only when empty: a run refused before writing anything leaves nothing
            except OSError:
                pass
        return False

    def _settle_replacement(self):
        """Finish or undo a replacement that a killed run left half done."""
        if not self.trash.is_dir():
            return
        if self.checkpoint.exists():        # the new run's checkpoint made it: the old run goes
            shutil.rmtree(self.trash)
            self.log(f"removed {self.trash}, the files of a run replaced by --overwrite")
            return
        for old in sorted(self.trash.iterdir()):   # killed before the new checkpoint: the old run comes back
            if not (self.out / old.name).exists():
                os.replace(old, self.out / old.name)
        shutil.rmtree(self.trash)
        self.log(f"put back the run that a killed --overwrite run was replacing in {self.out}")

    def holds_run(self):
        return self.checkpoint.exists()

    def replacing(self):
        """What ``train_resumable(replacing=...)`` calls around the first checkpoint's rename (for --overwrite)."""
        return _Replacement(self)


class _Replacement:
    def __init__(self, folder):
        self.folder = folder

    def retire(self):
        """Right before the new checkpoint is renamed into place: move the old run's files aside, each atomically."""
        folder = self.folder
        present = [folder.out / name for name in folder.files if (folder.out / name).exists()]
        if not present:
            return
        folder.trash.mkdir(exist_ok=True)
        for path in present:       # the checkpoint first: from then on, a checkpoint in the folder is the new run's
            os.replace(path, folder.trash / path.name)

    def drop(self):
        """Right after: the old run is gone for good."""
        shutil.rmtree(self.folder.trash, ignore_errors=True)
