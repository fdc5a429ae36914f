"""The training loop: shuffled minibatches, forward, loss, backward, optimizer step.

``fit`` returns a history (one dict per epoch) and never writes files; pass a
``callback`` to save checkpoints or log elsewhere.  A tqdm bar shows progress
with the running loss and accuracy when stdout is a terminal.

Modes: ``train_epoch`` (and so ``fit``) puts the model in training mode
(``model.train()``); ``evaluate`` and ``predict`` run it in evaluation mode and
then put back each layer's own ``training`` flag as they found it.
"""
import contextlib
import functools
import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from minicnn.nn.losses import get_loss, softmax, softmax_cross_entropy
from minicnn.utils.validation import check_rng, integer


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; says where and at which learning rate."""

    def __init__(self, epoch, step, lr, loss):
        super().__init__(f"loss became {loss} at epoch {epoch}, step {step} (learning rate {lr:g}); "
                         f"try a smaller learning rate")
        self.epoch, self.step, self.lr, self.loss = epoch, step, lr, loss


def check_dataset(x, y, name="x"):
    """Validate a data set before training: arrays, same length, finite floats, integer labels when 1-D."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise ValueError(f"{name} and its targets must be NumPy arrays, got {type(x).__name__} and {type(y).__name__}")
    if len(x) != len(y):
        raise ValueError(f"{name} and its targets have different lengths: {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}; convert with .astype(np.float32)")
    if not np.isfinite(x).all():
        bad = np.size(x) - np.count_nonzero(np.isfinite(x))
        raise ValueError(f"{name} contains {bad} NaN or infinite values; clean the data before training")
    if y.ndim == 1 and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"class labels must be integers, got dtype {y.dtype}")


def iterate_minibatches(n, batch_size, rng=None):
    """Yield index arrays covering range(n) in batches; shuffled when an rng is given."""
    batch_size = integer(batch_size, "batch_size", 1)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _set_training(model, mode):
    """``model.train(mode)`` for a Sequential; other models: each of their ``layers`` (if any) gets the flag."""
    train = getattr(model, "train", None)
    if callable(train):
        train(mode)
    else:
        for layer in getattr(model, "layers", ()):
            layer.training = mode


_ABSENT = object()


@contextlib.contextmanager
def evaluation_mode(model):
    """Run the body with ``model`` in evaluation mode, then put back every layer's flag as it was.

    A layer that had no ``training`` attribute has none again afterwards.
    """
    found = [(layer, getattr(layer, "training", _ABSENT)) for layer in getattr(model, "layers", ())]
    _set_training(model, False)
    try:
        yield model
    finally:
        for layer, flag in found:
            if flag is not _ABSENT:
                layer.training = flag
            elif "training" in vars(layer):
                del layer.training


def _use_bar(progress):
    return sys.stdout.isatty() if progress is None else bool(progress)


def train_epoch(model, optimizer, x, y, *, batch_size, rng, loss="cross_entropy", scheduler=None,
                augment=None, progress=None, epoch=1, desc=None, order=None, start_step=0, on_step=None,
                label_smoothing=0.0):
    """One pass over (x, y) in shuffled minibatches, with the model in training mode (left so afterwards).

    Returns {"loss", "accuracy" (None for mse), "seconds", "examples", "steps"} over the batches run here.
    ``label_smoothing`` (with the cross-entropy only) is ``softmax_cross_entropy``'s ``smoothing``; the
    loss reported is then the smoothed one.

    For resumable runs: ``order`` (a permutation of range(len(x))) replaces the
    shuffle drawn from ``rng``; ``start_step`` skips that many batches of it
    (already trained); ``on_step(step)`` is called after every optimizer step
    (step counted from 1 within the epoch) and may return False to end the
    epoch there, between two whole steps.
    """
    loss_fn = get_loss(loss)
    classify = loss_fn is softmax_cross_entropy
    if label_smoothing:
        if not classify:
            raise ValueError(f"label_smoothing works with the cross-entropy loss only, got loss={loss!r}")
        loss_fn = functools.partial(softmax_cross_entropy, smoothing=label_smoothing)
    start = time.perf_counter()
    _set_training(model, True)
    if order is None:
        batches = list(iterate_minibatches(len(x), batch_size, rng))
    else:
        if np.shape(order) != (len(x),):
            raise ValueError(f"order must be a permutation of range({len(x)}), got shape {np.shape(order)}")
        batches = [order[i:i + batch_size] for i in range(0, len(x), batch_size)]
    bar = tqdm(batches[start_step:], desc=desc or f"epoch {epoch}", leave=False, disable=not _use_bar(progress),
               unit="batch", file=sys.stdout, initial=start_step, total=len(batches))
    total_loss, correct, seen, steps = 0.0, 0, 0, 0
    for step, idx in enumerate(bar, start_step + 1):
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, rng)
        out = model.forward(xb)
        value, dout = loss_fn(out, yb)
        if not math.isfinite(value):
            raise NonFiniteLossError(epoch, step, optimizer.lr, value)
        model.backward(dout, need_input_grad=False)   # the data's own gradient is never used
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += value * len(idx)
        seen += len(idx)
        steps += 1
        if classify:
            correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
        if bar.disable is False and (step % 10 == 0 or step == len(batches)):
            postfix = {"loss": f"{total_loss / seen:.4f}"}
            if classify:
                postfix["acc"] = f"{correct / seen:.4f}"
            bar.set_postfix(postfix, refresh=False)
        if on_step is not None and on_step(step) is False:
            break
    bar.close()
    return {"loss": total_loss / max(seen, 1), "accuracy": correct / max(seen, 1) if classify else None,
            "seconds": time.perf_counter() - start, "examples": seen, "steps": steps}


def fit(model, optimizer, x, y, *, epochs, batch_size, rng, loss="cross_entropy", x_val=None, y_val=None,
        scheduler=None, augment=None, progress=None, verbose=True, callback=None, label_smoothing=0.0):
    """Train for ``epochs`` passes over (x, y).

    Parameters
    ----------
    model : Sequential
    optimizer : SGD, Adam, AdamW, RMSprop (anything with ``step()`` and ``lr``)
    x : (N, ...) floating array;  y : (N,) integer labels (cross-entropy) or targets shaped like the output (mse)
    epochs, batch_size : int
    rng : numpy.random.Generator, shuffles the minibatches (and is passed to ``augment``)
    loss : "cross_entropy", "mse" or a callable (pred, target) -> (loss, dpred)
    x_val, y_val : optional validation set, evaluated after each epoch
    scheduler : optional learning-rate schedule, stepped after every optimizer step
    augment : optional callable (x_batch, rng) -> x_batch applied to each training batch
    progress : tqdm bar per epoch; None = only when stdout is a terminal
    verbose : print one summary line per epoch
    callback : optional callable(record) after each epoch; return False to stop early
    label_smoothing : float in [0, 1), with the cross-entropy: train on smoothed targets (validation is not smoothed)

    Returns
    -------
    history : list of dicts, one per epoch: epoch, loss, accuracy, seconds, lr (and val_loss, val_accuracy)
    """
    check_dataset(x, y, "x")
    if x_val is not None:
        check_dataset(x_val, y_val, "x_val")
    epochs = integer(epochs, "epochs", 1)
    check_rng(rng, allow_none=False)
    history = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, **train_epoch(model, optimizer, x, y, batch_size=batch_size, rng=rng, loss=loss,
                                                scheduler=scheduler, augment=augment, progress=progress,
                                                epoch=epoch, desc=f"epoch {epoch}/{epochs}",
                                                label_smoothing=label_smoothing)}
        record["lr"] = optimizer.lr
        if x_val is not None:
            record["val_loss"], record["val_accuracy"] = evaluate(model, x_val, y_val, loss=loss)
        history.append(record)
        if verbose:
            print(format_record(record), flush=True)
        if callback is not None and callback(record) is False:
            break
    return history


def format_record(record, epochs=None):
    """One summary line per epoch: epoch (of ``epochs``), loss, accuracies, validation or test figures, lr, seconds."""
    parts = [f"epoch {record['epoch']:>2}/{epochs}" if epochs else f"epoch {record['epoch']}", f"loss {record['loss']:.4f}"]
    train_label = "train_acc" if "test_loss" in record else "acc"
    for key, label in (("accuracy", train_label), ("val_loss", "val_loss"), ("val_accuracy", "val_acc"),
                       ("test_loss", "test_loss"), ("test_accuracy", "test_acc")):
        if record.get(key) is not None:
            parts.append(f"{label} {record[key]:.4f}")
    if record.get("lr") is not None:
        parts.append(f"lr {record['lr']:.4g}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


def predict(model, x, batch_size=1000, return_logits=False):
    """Class predictions (argmax of the output), or the raw outputs with return_logits=True, in batches.

    ``x`` must be a finite floating array (NaN would give class 0 for every row); an empty ``x`` (N = 0)
    gives an empty result: shape (0,) of int64, or with return_logits the model's output for no rows.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a floating-point NumPy array, got {getattr(x, 'dtype', type(x).__name__)}")
    if not np.isfinite(x).all():
        bad = x.size - np.count_nonzero(np.isfinite(x))
        raise ValueError(f"x contains {bad} NaN or infinite values; predictions on them are meaningless")
    if len(x) == 0 and not return_logits:
        return np.zeros((0,), dtype=np.int64)
    with evaluation_mode(model):
        outs = [model.forward(x[idx]) for idx in iterate_minibatches(len(x), batch_size)]
    out = np.concatenate(outs) if outs else np.zeros((0,))
    return out if return_logits else out.argmax(axis=1)


def evaluate(model, x, y, batch_size=1000, loss="cross_entropy", copies=None):
    """Mean loss and accuracy over (x, y) in batches, in evaluation mode; accuracy is None for regression losses.

    ``copies`` (cross-entropy only; test-time augmentation): a function from a batch to a list of
    copies of it (``minicnn.data.augment.test_time_copies``); the prediction is then the mean of the
    softmax probabilities over the copies, and the loss ``-log`` of that mean at the right class.
    """
    check_dataset(x, y, "x")
    loss_fn = get_loss(loss)
    if copies is not None and loss_fn is not softmax_cross_entropy:
        raise ValueError(f"test-time copies work with the cross-entropy loss only, got loss={loss!r}")
    total, correct = 0.0, 0
    with evaluation_mode(model):
        for idx in iterate_minibatches(len(x), batch_size):
            if copies is None:
                out = model.forward(x[idx])
                value, _ = loss_fn(out, y[idx])
            else:
                out = np.mean([softmax(model.forward(c).astype(np.float64)) for c in copies(x[idx])], axis=0)
                value = float(-np.log(np.maximum(out[np.arange(len(idx)), y[idx]], 1e-300)).mean())
            total += value * len(idx)
            if loss_fn is softmax_cross_entropy:
                correct += int(np.count_nonzero(out.argmax(axis=1) == y[idx]))
    accuracy = correct / len(x) if loss_fn is softmax_cross_entropy else None
    return total / len(x), accuracy
