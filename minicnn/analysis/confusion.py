"""``python -m minicnn confusion CHECKPOINT``: which classes the network confuses, and its surest mistakes.

Classifies the test set (``--limit N``: its first N images): prints the
confusion matrix (rows: true class, columns: predicted) and draws it in
confusion.png, and draws the 16 test images the network got wrong with the
highest confidence, each with its true and predicted label, in mistakes.png
(``--out``, default the checkpoint's folder; existing files are replaced only
with ``--overwrite``).
"""

import numpy as np

from minicnn.analysis.common import Run, add_output_arguments, command_parser, figure_path
from minicnn.training.loop import predict
from minicnn.utils import plotting
from minicnn.utils.cli import command, positive_int


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(y_true, y_pred, K):
    """counts[t, p]: how many images of true class t were predicted as p.  Shape: (N,), (N,) -> (K, K) int64."""
    counts = np.zeros((K, K), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def confident_mistakes(probs, y_true, n=16):
    """Indices of the ``n`` wrong predictions with the highest predicted probability, surest first.

    Shape: probs (N, K), y_true (N,) -> (at most n,) int64
    """
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    order = np.argsort(-probs[wrong, pred[wrong]], kind="stable")
    return wrong[order[:n]]


def matrix_text(counts, names):
    width = max(max(len(n) for n in names), len(str(counts.max())), 4)
    lines = ["true \\ predicted", " " * width + " " + " ".join(f"{n:>{width}}" for n in names)]
    lines += [f"{names[t]:>{width}} " + " ".join(f"{v:>{width}}" for v in row) for t, row in enumerate(counts)]
    return "\n".join(lines)


def plot_confusion(counts, names, path, title):
    K = len(names)
    fig = plotting.new_figure(figsize=(0.55 * K + 2.5, 0.5 * K + 1.8), layout="constrained")
    if fig is None:
        return None
    ax = fig.subplots()
    off = counts.astype(np.float64)
    shown = ax.imshow(np.log1p(off), cmap="Blues")
    for (t, p), v in np.ndenumerate(counts):
        if v:
            ax.text(p, t, str(v), ha="center", va="center", fontsize=6,
                    color="white" if np.log1p(v) > 0.6 * np.log1p(counts.max()) else "black")
    ax.set_xticks(range(K), names, fontsize=7, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(K), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(shown, ax=ax, shrink=0.8, label="log(1 + count)")
    return plotting.save_figure(fig, path, title)


def plot_mistakes(images, labels, preds, confidences, indices, names, path, title):
    n = len(indices)
    cols = 4
    rows = max(1, -(-n // cols))
    fig = plotting.new_figure(figsize=(6.4, 1.75 * rows + 0.6), layout="constrained")
    if fig is None:
        return None
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        i = indices[k]
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"#{i}: true {names[labels[i]]}, said {names[preds[i]]} ({confidences[i]:.2f})", fontsize=6)
    return plotting.save_figure(fig, path, title)


@command("confusion")
def main(argv=None):
    p = command_parser("confusion", __doc__)
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="only the first N test images (default: all)")
    add_output_arguments(p)
    args = p.parse_args(argv)
    run = Run(args.checkpoint)
    paths = [figure_path(run, args, name) for name in ("confusion.png", "mistakes.png")]
    images, x, y = run.test_set(args.data, args.limit)
    probs = softmax(predict(run.model, x, return_logits=True).astype(np.float64))
    preds = probs.argmax(axis=1)
    counts = confusion_matrix(y, preds, len(run.classes))
    worst = confident_mistakes(probs, y)
    what = f"{len(y)} test images through {run.path}"
    print(f"confusion matrix of {what}: accuracy {np.trace(counts) / len(y):.4f}\n")
    print(matrix_text(counts, run.classes))
    print(f"\nthe {len(worst)} most confident mistakes (test image: true -> predicted, probability):")
    print("\n".join(f"  #{i}: {run.classes[y[i]]} -> {run.classes[preds[i]]}, {probs[i, preds[i]]:.3f}" for i in worst))
    written = [plot_confusion(counts, run.classes, paths[0], f"confusion matrix of {what}"),
               plot_mistakes(images, y, preds, probs.max(axis=1), worst, run.classes, paths[1],
                             f"the {len(worst)} most confident mistakes on {what}")]
    if all(written):
        print("\nfigures: " + ", ".join(written))
    return 0
