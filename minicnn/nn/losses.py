"""Losses: each returns ``(loss, dpred)``, the mean loss and its gradient with respect to the prediction."""
import numpy as np


def _check_labels(labels, N, K):
    if not isinstance(labels, np.ndarray) or labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D integer array of shape ({N},), got "
                         f"{getattr(labels, 'shape', type(labels).__name__)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices 0..{K - 1}), got dtype {labels.dtype}")
    if labels.shape[0] != N:
        raise ValueError(f"logits and labels disagree on the batch size: {N} rows of logits, {labels.shape[0]} labels")
    if N and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must lie in 0..{K - 1} for {K} classes, got values from {labels.min()} to {labels.max()}")


def softmax(logits):
    """Row-wise softmax, stable for any finite logits (the row maximum is subtracted first).

    Shape: logits (N, K) -> probs (N, K)
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels, smoothing=0.0):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    ``loss = -mean_n sum_k t[n, k] log softmax(logits)[n, k]``;  ``dlogits = (softmax(logits) - t) / N``,
    where the target ``t`` is ``onehot(labels)``, or with ``smoothing = s`` > 0 (label smoothing)
    ``(1 - s) onehot(labels) + s / K``: every class keeps a little of the target, so the
    network is not pushed towards ever larger logits for the right class.
    Computed through log-sum-exp, so logits of +-1e4 give a finite loss.

    Shape:
        logits: (N, K) floating,  labels: (N,) integers in 0..K-1,  smoothing: a float in [0, 1)
        returns (loss: float, dlogits: (N, K), dtype of logits)
    """
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits must be a floating-point array of shape (N, K), got "
                         f"{getattr(logits, 'shape', type(logits).__name__)} {getattr(logits, 'dtype', '')}")
    N, K = logits.shape
    if N == 0:
        raise ValueError("softmax_cross_entropy needs at least one example: the mean loss of an empty batch is undefined")
    _check_labels(labels, N, K)
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be a number in [0, 1), got {smoothing!r}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm                                   # (N, K)
    rows = np.arange(N)
    loss = -log_probs[rows, labels].mean(dtype=np.float64)
    dlogits = np.exp(log_probs)
    if smoothing:
        loss = (1 - smoothing) * loss - smoothing / K * log_probs.sum(axis=1, dtype=np.float64).mean()
        dlogits -= np.asarray(smoothing / K, dtype=logits.dtype)
        dlogits[rows, labels] -= np.asarray(1 - smoothing, dtype=logits.dtype)
    else:
        dlogits[rows, labels] -= 1
    dlogits *= np.asarray(1.0 / N, dtype=logits.dtype)
    return float(loss), dlogits


def mse(pred, target):
    """Mean squared error over every element, and its gradient.

    ``loss = mean((pred - target)**2)``;  ``dpred = 2 (pred - target) / pred.size``.

    Shape: pred and target the same shape -> (loss: float, dpred: like pred)
    """
    if not isinstance(pred, np.ndarray) or not np.issubdtype(pred.dtype, np.floating):
        raise ValueError(f"pred must be a floating-point array, got {getattr(pred, 'dtype', type(pred).__name__)}")
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")
    if pred.size == 0:
        raise ValueError(f"mse needs at least one value: the mean of an empty array (shape {pred.shape}) is undefined")
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = np.mean(np.square(diff, dtype=np.float64))
    return float(loss), diff * np.asarray(2.0 / diff.size, dtype=pred.dtype)


LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": mse}


def get_loss(loss):
    """A loss by name (``"cross_entropy"`` or ``"mse"``), or a callable ``(pred, target) -> (loss, dpred)`` as it is."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable (pred, target) -> (loss, dpred), got {loss!r}")
    return LOSSES[loss]
