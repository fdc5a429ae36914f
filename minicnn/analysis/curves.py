"""``python -m minicnn curves RUN_DIR/metrics.json``: loss, accuracy and learning rate, epoch by epoch.

Reads the ``history`` of a metrics.json written by ``minicnn train``
(also drawn at the end of every run as curves.png): training and test loss,
training and test accuracy, and the learning rate at the end of each epoch.
Writes curves.png (``--out``, default beside the metrics.json; an existing file
is replaced only with ``--overwrite``); without matplotlib, prints the table.
"""
from pathlib import Path

import numpy as np

from minicnn.analysis.common import command_parser
from minicnn.utils import plotting
from minicnn.utils.cli import command
from minicnn.utils.files import read_metrics

COLUMNS = ("loss", "test_loss", "accuracy", "test_accuracy", "lr")
LABELS = {"loss": "training", "test_loss": "test", "accuracy": "training", "test_accuracy": "test", "lr": "lr"}


def read_history(path):
    """The per-epoch records of a metrics.json; ValueError for anything else."""
    path, data = read_metrics(path)
    history = data.get("history")
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise ValueError(f"{path} holds no training history (a 'history' list of per-epoch records, as "
                         f"'minicnn train' writes)")
    return history


def curves(history):
    """``{"epoch": (E,), "loss": (E,), ...}`` as float arrays; a missing value is NaN."""
    def column(key):
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in history])
    return {key: column(key) for key in ("epoch",) + COLUMNS}


def curves_text(c):
    lines = ["epoch  " + "  ".join(f"{k:>13}" for k in COLUMNS)]
    for i, e in enumerate(c["epoch"]):
        lines.append(f"{int(e):>5}  " + "  ".join(f"{c[k][i]:>13.5g}" for k in COLUMNS))
    return "\n".join(lines)


def plot_training_curves(history, path, title):
    """Three panels: loss (log), accuracy, learning rate, per epoch. Returns the path, or None."""
    c = curves(history)
    fig = plotting.new_figure(figsize=(11, 3.4), layout="constrained")
    if fig is None:
        return None
    loss, acc, lr = fig.subplots(1, 3)
    for ax, keys, ylabel in ((loss, ("loss", "test_loss"), "loss"), (acc, ("accuracy", "test_accuracy"), "accuracy"),
                             (lr, ("lr",), "learning rate (end of epoch)")):
        for key in keys:
            if np.isfinite(c[key]).any():
                ax.plot(c["epoch"], c[key], marker="o", label=LABELS[key])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    if np.all(np.nan_to_num(np.r_[c["loss"], c["test_loss"]], nan=1.0) > 0):
        loss.set_yscale("log")
    return plotting.save_figure(fig, path, title, title_size=9)


@command("curves")
def main(argv=None):
    p = command_parser("curves", __doc__, checkpoint=False)
    p.add_argument("metrics", help="a run's metrics.json, or its folder")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for curves.png (default: beside the metrics.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing curves.png (default: refuse)")
    args = p.parse_args(argv)
    history = read_history(args.metrics)
    metrics = Path(args.metrics) / "metrics.json" if Path(args.metrics).is_dir() else Path(args.metrics)
    folder = Path(args.out) if args.out else metrics.parent
    path = folder / "curves.png"
    if plotting.have_matplotlib():
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it, or --out DIR to write elsewhere")
        folder.mkdir(parents=True, exist_ok=True)
    title = f"training curves of {metrics}"
    written = plot_training_curves(history, path, title)
    print(title)
    print(f"figure: {written}" if written else curves_text(curves(history)))
    return 0
