"""What every analysis command needs: its parser, a checkpoint's model and how it was trained, test images, where figures go."""
import argparse
from pathlib import Path

import numpy as np

from minicnn.analysis.images import digit_image
from minicnn.data.fetch import DATASETS
from minicnn.data.mnist import normalize
from minicnn.nn.conv import Conv2D
from minicnn.training.checkpoint import load_model, trained_on
from minicnn.utils import plotting
from minicnn.utils.cli import nonnegative_int

DIGITS = tuple(str(d) for d in range(10))
ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid")


def command_parser(name, doc, checkpoint=True):
    """The parser of ``python -m minicnn NAME``, described by the first paragraph of ``doc``, with a checkpoint argument."""
    p = argparse.ArgumentParser(prog=f"python -m minicnn {name}", description=doc.split("\n\n")[0])
    if checkpoint:
        p.add_argument("checkpoint", help="a checkpoint written by 'minicnn train', or its folder")
    return p


def class_names(dataset="mnist", classes=10):
    """The class names of a data set (``minicnn.data.fetch.DATASETS``), or the numbers 0..classes-1 when they do not fit."""
    known = DATASETS.get(dataset)
    names = known.spec.class_names if known is not None else None
    if names is None or len(names) != classes:
        names = DIGITS if classes == 10 else tuple(str(k) for k in range(classes))
    return tuple(names)


class Run:
    """A checkpoint's model (weights loaded) and how its inputs were prepared.

    Attributes: ``model`` (Sequential), ``checkpoint`` (Checkpoint), ``path``,
    ``dataset`` (e.g. "mnist"), ``mean`` and ``std`` (the normalisation of
    training: pixel / 255, minus mean, over std), ``classes`` (names).
    """

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / "checkpoint.npz"
        self.model, self.checkpoint = load_model(self.path)          # in eval mode
        self.dataset, self.mean, self.std = trained_on(self.checkpoint)
        K = self.model.layers[-1].params["W"].shape[1] if "W" in self.model.layers[-1].params else 10
        self.classes = class_names(self.dataset, K)

    @property
    def dtype(self):
        return next(p for _, p, _ in self.model.parameters()).dtype

    def prepare(self, images):
        """uint8 images (N, 28, 28) -> model inputs (N, 1, 28, 28), normalised as training did."""
        return normalize(images, self.mean, self.std).astype(self.dtype, copy=False)

    def test_set(self, root, limit=None):
        """The test images (raw uint8 (N, 28, 28)), model inputs (N, 1, 28, 28) and labels (N,) int64."""
        if self.dataset not in DATASETS:
            raise ValueError(f"{self.path} was trained on {self.dataset!r}; these views know {sorted(DATASETS)}")
        known = DATASETS[self.dataset]
        _, _, images, labels = known.load(root, download=False)
        images, labels = images[:limit], labels[:limit].astype(np.int64)
        return images, self.prepare(images), labels


def conv_layers(model):
    """``[(index of the layer whose output is shown, name)]``: each Conv2D, seen after the activation right after it.

    The name reads like ``"0: Conv2D"`` or ``"3: Conv2D + ReLU"``.
    """
    shown = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Conv2D):
            nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
            if nxt is not None and type(nxt).__name__ in ACTIVATIONS:
                shown.append((i + 1, f"{i}: Conv2D + {type(nxt).__name__}"))
            else:
                shown.append((i, f"{i}: Conv2D"))
    return shown


def add_input_arguments(p):
    """--index / --image, --data, --out, --overwrite: how a view picks its image and where it writes."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=nonnegative_int, default=0, help="test image number (default: 0)")
    which.add_argument("--image", default=None, metavar="FILE",
                       help="your own PNG or JPEG instead, prepared as MNIST was (see 'python -m minicnn predict')")
    add_output_arguments(p)


def add_output_arguments(p, data=True):
    if data:
        p.add_argument("--data", default=None,
                   help="the data set's folder (default: the checkpoint's data set's in the data folder, which "
                        "'minicnn fetch --where' prints)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for the figure (default: the checkpoint's folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a figure of the same name (default: refuse, and say so, before any work)")


def pick_input(run, args):
    """(raw 28x28 image, model input (1, 1, 28, 28), label or None, description) for --index or --image."""
    if args.image is not None:
        raw = digit_image(args.image)
        return raw, run.prepare(raw[None]), None, f"your image {args.image}"
    images, x, labels = run.test_set(args.data)
    if args.index >= len(images):
        raise ValueError(f"--index {args.index} is past the end of the test set ({len(images)} images, 0..{len(images) - 1})")
    i = args.index
    return images[i], x[i:i + 1], int(labels[i]), f"test image {i} (label {run.classes[labels[i]]})"


def figure_path(run, args, name):
    """Where figure ``name`` goes (--out or beside the checkpoint); refuses an existing file without --overwrite.

    Checked before any work, and only when a figure will be drawn (matplotlib installed).
    """
    folder = Path(args.out) if args.out is not None else run.path.parent
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; give a folder for the figures")
    path = folder / name
    if plotting.have_matplotlib():
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it, or --out DIR to write elsewhere")
        folder.mkdir(parents=True, exist_ok=True)
    return path
