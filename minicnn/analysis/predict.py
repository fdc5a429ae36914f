"""``python -m minicnn predict CHECKPOINT IMAGE...``: what a trained network reads in your own pictures.

Each PNG or JPEG is read with Pillow and prepared the way MNIST's digits were
made (``minicnn.analysis.images``): grayscale, inverted if the background is
light, cropped to the ink, longest side scaled to 20 pixels, centred by its
centre of mass in 28x28, then normalised with the mean and std of the run.
Prints the three most likely classes with their probabilities.  ``--show``
also writes <image name>_prepared.png, the original beside the 28x28 the
network saw (``--out``, default the checkpoint's folder; an existing file is
replaced only with ``--overwrite``).
"""
from pathlib import Path

import numpy as np

from minicnn.analysis.common import Run, add_output_arguments, command_parser, figure_path
from minicnn.analysis.confusion import softmax
from minicnn.analysis.images import digit_image, read_grayscale
from minicnn.utils import plotting
from minicnn.utils.cli import command


def top_classes(model, x, k=3):
    """The ``k`` most likely classes and their probabilities.  Shape: x (1, C, H, W) -> (k,), (k,)."""
    probs = softmax(model.forward(x).astype(np.float64))[0]
    order = np.argsort(-probs, kind="stable")[:k]
    return order, probs[order]


def plot_prepared(original, prepared, path, title):
    fig = plotting.new_figure(figsize=(5.6, 3.2), layout="constrained")
    if fig is None:
        return None
    a, b = fig.subplots(1, 2)
    a.imshow(original, cmap="gray", vmin=0, vmax=255)
    a.set_title(f"your picture ({original.shape[1]}x{original.shape[0]})", fontsize=8)
    b.imshow(prepared, cmap="gray", vmin=0, vmax=255)
    b.set_title("what the network sees (28x28)", fontsize=8)
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    return plotting.save_figure(fig, path, title)


@command("predict")
def main(argv=None):
    p = command_parser("predict", __doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG pictures of one digit each")
    p.add_argument("--show", action="store_true", help="write <image name>_prepared.png for each picture")
    add_output_arguments(p, data=False)
    args = p.parse_args(argv)
    run = Run(args.checkpoint)
    paths = [figure_path(run, args, Path(image).stem + "_prepared.png") for image in args.images] if args.show else []
    for n, image in enumerate(args.images):
        prepared = digit_image(image)
        classes, probs = top_classes(run.model, run.prepare(prepared[None]))
        print(f"{image}: " + ", ".join(f"{run.classes[c]} {p:.3f}" for c, p in zip(classes, probs)))
        if args.show:
            written = plot_prepared(read_grayscale(image), prepared, paths[n],
                                    f"{image} read by {run.path}: {run.classes[classes[0]]} ({probs[0]:.2f})")
            if written:
                print(f"  figure: {written}")
    return 0
