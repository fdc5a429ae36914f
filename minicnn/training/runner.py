"""A resumable training run: a checkpoint every epoch, Ctrl-C or SIGTERM saves and stops, divergence stops.

``train_resumable`` wraps ``minicnn.training.loop.train_epoch`` with what a long run needs:

- after every epoch it evaluates on the test set, prints one summary line and
  writes the checkpoint (atomically, see ``minicnn.training.checkpoint``);
- the first Ctrl-C (SIGINT) or SIGTERM asks the run to stop after the current
  step: it saves a checkpoint of that exact point (weights, optimizer,
  schedule, random generator, the epoch's shuffle and how far into it the run
  got) and raises ``TrainingInterrupted`` (its ``signum`` says which signal);
  a second one stops at once with ``StoppedAtOnce`` (a ``KeyboardInterrupt``),
  keeping the last checkpoint on disk;
- signal dispositions: a signal that is ignored when the run starts (SIG_IGN,
  as ``nohup`` or a shell's background job leave SIGINT) stays ignored, since
  whoever started the process asked for that; SIGTERM is handled unless it too
  was ignored.  A handler Python cannot reinstall (one set outside Python) is
  left alone.  When the run ends, however it ends, exactly the handlers found
  at the start are put back;
- a NaN or infinite loss on any step, a non-finite test loss after an epoch,
  or non-finite weights raise ``NonFiniteLossError`` (``DivergedError`` for the
  last two) and write nothing, so the checkpoint on disk is the last good one:
  finite weights and, after an epoch, a finite test loss;
- resuming from any of these checkpoints continues the run so that it ends
  with weights bit-identical to an uninterrupted run with the same seed.
"""
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from minicnn.training.checkpoint import CheckpointError, save_checkpoint
from minicnn.training.loop import NonFiniteLossError, evaluate, format_record, train_epoch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """The run was stopped by Ctrl-C or SIGTERM (``signum``); ``path`` holds a checkpoint to resume from."""

    def __init__(self, path, epoch, step, signum=signal.SIGINT):
        if step:
            where = f"in epoch {epoch} after step {step}"
        else:
            where = "before the first epoch" if epoch == 1 else f"after epoch {epoch - 1}"
        super().__init__(f"interrupted {where}; checkpoint saved to {path}")
        self.path, self.epoch, self.step, self.signum = path, epoch, step, signum


class StoppedAtOnce(KeyboardInterrupt):
    """A second stop signal (``signum``): the run stopped without saving; the last checkpoint on disk stays."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class DivergedError(NonFiniteLossError):
    """The weights diverged although every step's loss was finite (e.g. in an epoch's last step)."""

    def __init__(self, what, epoch, lr):
        FloatingPointError.__init__(self, f"{what} in epoch {epoch}: the weights diverged (peak learning rate "
                                          f"{lr:g}); try a smaller learning rate")
        self.epoch, self.step, self.lr, self.loss = epoch, None, lr, None


def _signal_name(signum):
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class _StopOnSignals:
    """While active, the first SIGINT or SIGTERM sets ``signum``; a second one raises ``StoppedAtOnce``.

    Signals found ignored (SIG_IGN) or with a handler set outside Python (None) are not taken over.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.requested:
            raise StoppedAtOnce(signum)
        self.signum = signum
        _say(f"{_signal_name(signum)}: stopping after this step to save a checkpoint "
             f"(Ctrl-C or SIGTERM again: quit at once without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                current = signal.getsignal(signum)
                if current is not None and current is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
        return False


def _say(message):
    """Print from a signal handler: one unbuffered write to stderr (print could re-enter a busy stdout)."""
    try:
        os.write(sys.stderr.fileno(), (message + "\n").encode())
    except (OSError, ValueError, AttributeError):  # no usable stderr (closed, or replaced by an object)
        pass


def _check_finite_weights(model, epoch, lr):
    for name, p, _ in model.parameters():
        if not np.isfinite(p).all():
            raise DivergedError(f"weight {name} became NaN or infinite", epoch, lr)


def train_resumable(model, optimizer, x, y, x_test, y_test, *, epochs, batch_size, rng, checkpoint_path,
                    scheduler=None, augment=None, resume=None, extra=None, progress=None, on_step=None,
                    on_epoch=None, log=print, replacing=None, label_smoothing=0.0):
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
    on_epoch : optional callable(model) -> dict of JSON-ready entries added to the epoch's history record
               (e.g. a snapshot of the first-layer kernels); kept in the checkpoint with the history
    log : callable printing one line (``print``)
    label_smoothing : float in [0, 1): ``train_epoch``'s (the test set is evaluated without it)
    replacing : optional object whose ``retire()`` runs once, when the first checkpoint is completely written and
                right before it is renamed into place, and ``drop()`` right after (``RunFolder.replacing()``:
                the run it replaces stays until then)

    Raises
    ------
    TrainingInterrupted after a first Ctrl-C or SIGTERM, with a checkpoint of that point saved;
    StoppedAtOnce (a KeyboardInterrupt) after a second one (the checkpoint on disk is the last one saved);
    NonFiniteLossError when a step's loss is NaN or infinite, DivergedError (a subclass) when the test
    loss or a weight is (the last good checkpoint is kept);
    OSError when a checkpoint cannot be written (e.g. a full disk; the previous one is kept).
    """
    n = len(x)
    steps_per_epoch = -(-n // batch_size)
    history, epoch, start_step, order, partial = [], 1, 0, None, None
    if resume is not None:
        try:
            history, epoch = json.loads(resume.extra_str("history", "[]")), resume.epoch + 1
            if "order" in resume.extra:
                order = np.asarray(resume.extra["order"])
                start_step = int(resume.extra["epoch_step"])
                partial = json.loads(resume.extra_str("partial"))
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{resume.path} is damaged: its history or mid-epoch state cannot be read "
                                  f"({type(e).__name__}: {e})") from None
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise CheckpointError(f"{resume.path} is damaged: its history is not a list of epoch records")
        if order is not None:
            if order.shape != (n,) or order.dtype.kind not in "iu" or not 0 <= start_step <= steps_per_epoch:
                raise CheckpointError(f"{resume.path} was interrupted mid-epoch on a training set of "
                                      f"{order.shape[0] if order.ndim else 0} images; this run has {n}")
            if not np.array_equal(np.sort(order), np.arange(n)) or not isinstance(partial, dict) \
                    or not {"loss_sum", "correct", "examples", "seconds"} <= set(partial):
                raise CheckpointError(f"{resume.path} is damaged: its mid-epoch state (the shuffle order and the "
                                      f"epoch's running sums) is not one a run writes")
        resume.restore(model, optimizer, scheduler, rng)
    extra = dict(extra or {})
    peak_lr = getattr(scheduler, "base_lr", optimizer.lr)

    def save(completed_epoch, mid_epoch=None):
        nonlocal replacing
        _check_finite_weights(model, completed_epoch + 1, peak_lr)
        entries = {**extra, "history": json.dumps(history)}
        if mid_epoch is not None:
            entries.update(mid_epoch)
        retire = replacing.retire if replacing is not None else None
        save_checkpoint(checkpoint_path, model=model, optimizer=optimizer, scheduler=scheduler, rng=rng,
                        epoch=completed_epoch, step=optimizer.steps, extra=entries, before_replace=retire)
        if replacing is not None:
            replacing, done = None, replacing
            done.drop()

    with _StopOnSignals() as stop:
        if resume is None:
            save(0)  # a starting point to come back to, even if the first epoch fails
            if stop.requested:
                raise TrainingInterrupted(checkpoint_path, 1, 0, stop.signum)
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
                               order=order, start_step=start_step, on_step=step_hook,
                               label_smoothing=label_smoothing)
            partial = _merge(partial, part)
            done = start_step + part["steps"]
            if done < steps_per_epoch:  # stopped by Ctrl-C between two steps
                save(epoch - 1, {"order": order, "epoch_step": np.array(done), "partial": json.dumps(partial)})
                raise TrainingInterrupted(checkpoint_path, epoch, done, stop.signum)
            record = {"epoch": epoch, "loss": partial["loss_sum"] / partial["examples"],
                      "accuracy": partial["correct"] / partial["examples"], "lr": optimizer.lr}
            record["test_loss"], record["test_accuracy"] = evaluate(model, x_test, y_test)
            if not math.isfinite(record["test_loss"]):
                raise DivergedError(f"the test loss became {record['test_loss']} after the last step", epoch,
                                    peak_lr)
            if on_epoch is not None:
                record.update(on_epoch(model))
            record["seconds"] = partial["seconds"] + time.perf_counter() - epoch_start - part["seconds"]
            history.append(record)
            order, start_step, partial = None, 0, None
            save(epoch)
            log(format_record(record, epochs))
            if stop.requested and epoch < epochs:
                raise TrainingInterrupted(checkpoint_path, epoch + 1, 0, stop.signum)
    return history


def _merge(partial, part):
    """Running sums of an epoch that may be trained in several pieces (before and after a resume)."""
    partial = partial or {"loss_sum": 0.0, "correct": 0, "examples": 0, "seconds": 0.0}
    return {"loss_sum": partial["loss_sum"] + part["loss"] * part["examples"],
            "correct": partial["correct"] + round(part["accuracy"] * part["examples"]),
            "examples": partial["examples"] + part["examples"],
            "seconds": partial["seconds"] + part["seconds"]}
