"""Experiment 2: edge detectors emerge in a classifier because they are useful.

A small CNN is trained from random weights to tell which way a straight edge
in a noisy image runs (see :func:`minicnn.data.synthetic.orientation_dataset`).  Nobody tells the first layer
what to look for; afterwards each of its kernels is compared with the
oriented Sobel family (:func:`minicnn.edges.filters.best_match`).

The choices that make the learned kernels clearly edge detectors:

- the label depends only on the edge's direction, and edges appear at random
  positions with random brightness, so nothing but the local direction of the
  gradient predicts the class;
- a single max-pool over the whole feature map makes each filter report
  "how strongly does my pattern occur anywhere"; the dense layer can only
  combine those few numbers, so each filter has to be an orientation detector
  by itself;
- pixel noise in the inputs rewards averaging along the edge, which turns a
  bare two-pixel difference into Sobel's smoothed difference, and a little
  weight decay removes what is left of the random initial weights in
  directions the data never pushes;
- eight classes, the direction in which the image gets brighter (0, 45, ...,
  315 degrees), and eight filters: each direction needs its own detector,
  since a ReLU keeps only one sign of a filter's response;
- inputs centred at 0 and a short learning-rate warm-up, so fewer filters
  die (a ReLU filter that never fires stops learning and keeps its random
  look).
"""
import time

import numpy as np

from minicnn.data.synthetic import orientation_dataset
from minicnn.edges.filters import best_match
from minicnn.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from minicnn.nn.model import Sequential
from minicnn.nn.optim import SGD
from minicnn.nn.schedules import CosineLR
from minicnn.training.loop import evaluate, fit


def build_model(n_filters=8, size=16, pool=None, classes=8, *, rng, dtype=np.float32):
    """Conv2D(1, F, 3) -> ReLU -> MaxPool2D(pool) -> Flatten -> Dense(F * P * P, classes).

    ``pool`` defaults to the whole feature map (``size - 2``), so each filter
    contributes one number, its strongest response anywhere (P = 1).

    Shape:
        x: (N, 1, size, size) -> logits (N, K),  K = classes,  P = (size - 2) // pool
    """
    if not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    pool = size - 2 if pool is None else pool
    if not isinstance(pool, int) or not 1 <= pool <= size - 2:
        raise ValueError(f"pool must be an int in 1..{size - 2} (the feature map side), got {pool!r}")
    P = (size - 2) // pool
    return Sequential([
        Conv2D(1, n_filters, 3, rng=rng, dtype=dtype),
        ReLU(),
        MaxPool2D(pool),
        Flatten(),
        Dense(n_filters * P * P, classes, rng=rng, dtype=dtype),
    ])


def match_kernels(W, family="sobel"):
    """Best oriented-edge match for every first-layer kernel.

    Shape: W (F, 1, 3, 3) -> list of F ``Match`` tuples
    """
    W = np.asarray(W)
    if W.ndim != 4 or W.shape[1:] != (1, 3, 3):
        raise ValueError(f"match_kernels expected conv weights of shape (F, 1, 3, 3), got {W.shape}")
    return [best_match(W[f, 0], family) for f in range(W.shape[0])]


def train_edge_classifier(*, rng, n_filters=8, size=16, pool=None, n_train=4000, n_val=1000, noise=0.2,
                          min_contrast=0.5, classes=8, epochs=10, batch_size=32, lr=0.1, momentum=0.9,
                          weight_decay=1e-3, warmup_steps=200, progress=False, verbose=False):
    """Train the classifier and match its first-layer kernels against Sobel.

    Returns
    -------
    result : dict with ``val_accuracy``, ``matches`` (list of dicts: name,
        angle, polarity, similarity per kernel), ``median_similarity`` (median
        of |similarity| over the kernels), ``kernels`` (F, 3, 3), ``state``
        (the model's arrays), ``history`` and ``seconds``.
    """
    data = dict(noise=noise, min_contrast=min_contrast, classes=classes)
    x, y = orientation_dataset(n_train, size, rng=rng, **data)
    x_val, y_val = orientation_dataset(n_val, size, rng=rng, **data)
    x, x_val = x - np.float32(0.5), x_val - np.float32(0.5)  # centre the 0..1 intensities
    model = build_model(n_filters, size, pool, classes, rng=rng)
    optimizer = SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = epochs * -(-n_train // batch_size)
    # short runs (tests) get at most half of their steps as warm-up
    scheduler = CosineLR(optimizer, total_steps=steps, warmup_steps=min(warmup_steps, steps // 2))
    start = time.perf_counter()
    history = fit(model, optimizer, x, y, epochs=epochs, batch_size=batch_size, rng=rng,
                  x_val=x_val, y_val=y_val, scheduler=scheduler, progress=progress, verbose=verbose)
    seconds = time.perf_counter() - start
    W = model.layers[0].params["W"]
    matches = match_kernels(W)
    _, val_accuracy = evaluate(model, x_val, y_val)
    return {
        "val_accuracy": val_accuracy,
        "matches": [m._asdict() for m in matches],
        "median_similarity": float(np.median([abs(m.similarity) for m in matches])),
        "kernels": W[:, 0].copy(),
        "state": model.state_dict(),
        "history": history,
        "seconds": seconds,
    }
