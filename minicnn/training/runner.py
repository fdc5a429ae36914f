"""A resumable training run: a checkpoint every epoch, Ctrl-C saves and stops, non-finite losses stop.

``train_resumable`` wraps ``train.train_epoch`` with what a long run needs:

- after every epoch it evaluates on the test set, prints one summary line and
  writes the checkpoint (atomically, see ``minicnn.training.checkpoint``);
- the first Ctrl-C asks the run to stop after the current step: it saves a
  checkpoint of that exact point (weights, optimizer, schedule, random
  generator, the epoch's shuffle and how far into it the run got) and raises
  ``TrainingInterrupted``; a second Ctrl-C stops at once, keeping the last
  checkpoint on disk;
- a NaN or infinite loss raises ``NonFiniteLossError`` and writes nothing, so
  the last good checkpoint stays;
- resuming from any of these checkpoints continues the run so that it ends
  with weights bit-identical to an uninterrupted run with the same seed.
"""
import json
import signal
import threading
import time

import numpy as np

from minicnn.training.checkpoint import CheckpointError, save_checkpoint
from minicnn.training.loop import evaluate, train_epoch


class TrainingInterrupted(Exception):
    """The run was stopped by Ctrl-C; ``path`` holds a checkpoint to resume from."""

    def __init__(self, path, epoch, step):
        where = f"in epoch {epoch} after step {step}" if step else f"after epoch {epoch - 1}"
        super().__init__(f"interrupted {where}; checkpoint saved to {path}")
        self.path, self.epoch, self.step = path, epoch, step


class _StopOnSigint:
    """While active, the first SIGINT sets ``requested``; the second raises KeyboardInterrupt as usual."""

    def __init__(self, message):
        self.requested = False
        self.message = message
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(self.message, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def format_epoch(record, epochs):
    """One summary line: epoch, loss, train (running, augmented) and test accuracy, lr, seconds."""
    return (f"epoch {record['epoch']:>2}/{epochs}  loss {record['loss']:.4f}  "
            f"train_acc {record['accuracy']:.4f}  test_loss {record['test_loss']:.4f}  "
            f"test_acc {record['test_accuracy']:.4f}  lr {record['lr']:.4g}  {record['seconds']:.1f}s")


def train_resumable(model, optimizer, x, y, x_test, y_test, *, epochs, batch_size, rng, checkpoint_path,
                    scheduler=None, augment=None, resume=None, extra=None, progress=None, on_step=None,
                    log=print):
    """Train for ``epochs`` epochs with a checkpoint after each; returns the history (one dict per epoch).

    Parameters
    ----------
    model, optimizer, scheduler : as for ``minicnn.training.loop.fit``; build them fresh, ``resume`` fills them in
    x, y : training images (N, C, H, W) float and labels (N,)
    x_test, y_test : evaluated after every epoch
    epochs, batch_size : int
    rng : numpy.random.Generator: the shuffles and the augmentation draw from it
    checkpoint_path : where every checkpoint is written (replaced atomically)
    augment : optional callable (x_batch, rng) -> x_batch
    resume : Checkpoint from ``load_checkpoint``, optional: continue that run
    extra : dict of str -> str saved in every checkpoint (e.g. the run's configuration as JSON)
    progress : tqdm bar per epoch (None: only on a terminal)
    on_step : optional callable(epoch, step) after every optimizer step (for tests and logging)
    log : callable printing one line (``print``)

    Raises
    ------
    TrainingInterrupted after a first Ctrl-C, with a checkpoint of that point saved;
    KeyboardInterrupt after a second one (the checkpoint on disk is the last one saved, intact);
    NonFiniteLossError when the loss is NaN or infinite (the last good checkpoint is kept).
    """
    n = len(x)
    steps_per_epoch = -(-n // batch_size)
    history, epoch, start_step, order, partial = [], 1, 0, None, None
    if resume is not None:
        resume.restore(model, optimizer, scheduler, rng)
        history = json.loads(resume.extra_str("history", "[]"))
        epoch = resume.epoch + 1
        if "order" in resume.extra:
            order = np.asarray(resume.extra["order"])
            start_step = int(resume.extra["epoch_step"])
            partial = json.loads(resume.extra_str("partial"))
            if order.shape != (n,) or not 0 <= start_step <= steps_per_epoch:
                raise CheckpointError(f"{resume.path} was interrupted mid-epoch on a training set of "
                                      f"{order.shape[0]} images; this run has {n}")
    extra = dict(extra or {})

    def save(completed_epoch, mid_epoch=None):
        entries = {**extra, "history": json.dumps(history)}
        if mid_epoch is not None:
            entries.update(mid_epoch)
        save_checkpoint(checkpoint_path, model=model, optimizer=optimizer, scheduler=scheduler, rng=rng,
                        epoch=completed_epoch, step=optimizer.steps, extra=entries)

    if resume is None:
        save(0)  # a starting point to come back to, even if the first epoch fails
    message = "Ctrl-C: stopping after this step to save a checkpoint (press Ctrl-C again to quit without saving)"
    with _StopOnSigint(message) as stop:
        def step_hook(step):
            if on_step is not None:
                on_step(epoch, step)
            return not stop.requested

        for epoch in range(epoch, epochs + 1):
            if order is None:
                order = rng.permutation(n)
            epoch_start = time.perf_counter()
            part = train_epoch(model, optimizer, x, y, batch_size=batch_size, rng=rng, scheduler=scheduler,
                               augment=augment, progress=progress, epoch=epoch, desc=f"epoch {epoch}/{epochs}",
                               order=order, start_step=start_step, on_step=step_hook)
            partial = _merge(partial, part)
            done = start_step + part["steps"]
            if done < steps_per_epoch:  # stopped by Ctrl-C between two steps
                save(epoch - 1, {"order": order, "epoch_step": np.array(done), "partial": json.dumps(partial)})
                raise TrainingInterrupted(checkpoint_path, epoch, done)
            record = {"epoch": epoch, "loss": partial["loss_sum"] / partial["examples"],
                      "accuracy": partial["correct"] / partial["examples"], "lr": optimizer.lr}
            record["test_loss"], record["test_accuracy"] = evaluate(model, x_test, y_test)
            record["seconds"] = partial["seconds"] + time.perf_counter() - epoch_start - part["seconds"]
            history.append(record)
            order, start_step, partial = None, 0, None
            save(epoch)
            log(format_epoch(record, epochs))
            if stop.requested and epoch < epochs:
                raise TrainingInterrupted(checkpoint_path, epoch + 1, 0)
    return history


def _merge(partial, part):
    """Running sums of an epoch that may be trained in several pieces (before and after a resume)."""
    partial = partial or {"loss_sum": 0.0, "correct": 0, "examples": 0, "seconds": 0.0}
    return {"loss_sum": partial["loss_sum"] + part["loss"] * part["examples"],
            "correct": partial["correct"] + round(part["accuracy"] * part["examples"]),
            "examples": partial["examples"] + part["examples"],
            "seconds": partial["seconds"] + part["seconds"]}
