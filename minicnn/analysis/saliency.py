"""``python -m minicnn saliency CHECKPOINT``: which pixels the predicted class's score is most sensitive to.

The gradient of the predicted class's logit with respect to the input pixels,
from the model's own backward pass (``model.backward(onehot,
need_input_grad=True)``, no autograd): a large ``|gradient|`` means a small
change of that pixel moves the score most.  Drawn as a heat map beside the
image in saliency.png (``--out``, default the checkpoint's folder; an existing
file is replaced only with ``--overwrite``); without matplotlib, an ASCII heat
map of the image's 28x28 pixels.
"""

import numpy as np

from minicnn.analysis.common import Run, add_input_arguments, command_parser, figure_path, pick_input
from minicnn.utils import plotting
from minicnn.utils.cli import command

SHADES = " .:-=+*#%@"


def input_gradient(model, x, cls=None):
    """The gradient of logit ``cls`` (default: the predicted class) with respect to ``x``.

    Shape: x (1, C, H, W) -> (logits (K,), cls, gradient (C, H, W)), in x's dtype
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"input_gradient expected one image of shape (1, C, H, W), got {x.shape}")
    logits = model.forward(x)
    K = logits.shape[1]
    cls = int(np.argmax(logits[0])) if cls is None else int(cls)
    if not 0 <= cls < K:
        raise ValueError(f"class {cls} is not one of the model's {K} classes")
    onehot = np.zeros_like(logits)
    onehot[0, cls] = 1
    dx = model.backward(onehot, need_input_grad=True)
    return logits[0], cls, dx[0]


def ascii_heatmap(values):
    """A 2-D array of non-negative values as characters from ' ' (0) to '@' (the maximum), two per pixel."""
    v = np.asarray(values, dtype=np.float64)
    top = v.max() if v.size and v.max() > 0 else 1.0
    idx = np.clip((v / top * (len(SHADES) - 1)).round().astype(int), 0, len(SHADES) - 1)
    return "\n".join("".join(SHADES[i] * 2 for i in row) for row in idx)


def plot_saliency(image, saliency, path, title):
    """The image and |gradient| side by side. Returns the path, or None without matplotlib."""
    fig = plotting.new_figure(figsize=(6.4, 3.6), layout="constrained")
    if fig is None:
        return None
    a, b = fig.subplots(1, 2)
    a.imshow(image, cmap="gray")
    a.set_title("input", fontsize=8)
    shown = b.imshow(saliency, cmap="hot")
    b.set_title("|d logit / d pixel|", fontsize=8)
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=b, shrink=0.8)
    return plotting.save_figure(fig, path, title)


@command("saliency")
def main(argv=None):
    p = command_parser("saliency", __doc__)
    add_input_arguments(p)
    args = p.parse_args(argv)
    run = Run(args.checkpoint)
    path = figure_path(run, args, "saliency.png")
    raw, x, _, what = pick_input(run, args)
    logits, cls, grad = input_gradient(run.model, x)
    heat = np.abs(grad).max(axis=0)  # (H, W): the largest over input channels
    title = f"saliency of {what} for class {run.classes[cls]} (predicted) through {run.path}"
    written = plot_saliency(raw, heat, path, title)
    print(title)
    if written:
        print(f"figure: {written}")
    else:
        print(f"|gradient|, from ' ' (0) to '@' ({heat.max():.3g}):\n{ascii_heatmap(heat)}")
    return 0
