"""``python -m minicnn featuremaps CHECKPOINT``: what every convolution of a trained network makes of one image.

For one test image (``--index``) or your own picture (``--image``): the input
and the output of every convolution, after the activation right behind it
(or the convolution's own output when a pooling layer comes first, as in the
default network), one panel per channel, each layer with its name and shape.
Writes featuremaps.png (``--out``, default the checkpoint's folder; an
existing file is replaced only with ``--overwrite``); without matplotlib,
prints each channel's maximum and where it is.
"""

import numpy as np

from minicnn.analysis.common import Run, add_input_arguments, command_parser, conv_layers, figure_path, pick_input
from minicnn.utils import plotting
from minicnn.utils.cli import command, nonnegative_int


def feature_maps(model, x, layer=None):
    """Run ``x`` through ``model`` and keep the output of every convolution (after its activation).

    Shape: x (1, C, H, W) -> list of (name, maps (F, H_out, W_out)), the input first as ("input", (C, H, W))

    ``layer``: keep only the convolution whose name starts with ``f"{layer}:"`` (its layer index).
    """
    wanted = conv_layers(model)
    if layer is not None:
        wanted = [(i, name) for i, name in wanted if name.startswith(f"{layer}:")]
        if not wanted:
            raise ValueError(f"--layer {layer} is not a convolution; the convolutions are layers "
                             + ", ".join(name.split(":")[0] for _, name in conv_layers(model)))
    keep = dict(wanted)
    out = [("input", x[0])]
    for i, lay in enumerate(model.layers):
        x = lay.forward(x)
        if i in keep:
            out.append((keep[i], x[0].copy()))
        if i >= max(keep, default=-1):
            break
    return out


def maxima_text(maps):
    """Per layer, each channel's maximum and where it is (row, column)."""
    lines = []
    for name, m in maps:
        lines.append(f"{name}: shape {m.shape} (channels, height, width)")
        for c, channel in enumerate(m):
            r, col = np.unravel_index(int(np.argmax(channel)), channel.shape)
            lines.append(f"  channel {c:>3}: max {float(channel[r, col]):+9.4f} at (row {r}, column {col})")
    return "\n".join(lines)


def plot_feature_maps(maps, path, title):
    """One block of panels per layer (at most 16 a row), the input first. Returns the path, or None."""
    per_row = 16
    rows_per = [-(-m.shape[0] // per_row) for _, m in maps]
    cols = min(per_row, max(m.shape[0] for _, m in maps))
    fig = plotting.new_figure(figsize=(0.95 * cols + 0.6, 1.05 * sum(rows_per) + 0.35 * len(maps) + 0.6), layout="constrained")
    if fig is None:
        return None
    subfigs = fig.subfigures(len(maps), 1, height_ratios=[r + 0.35 for r in rows_per], squeeze=False)[:, 0]
    for sub, (name, m), rows in zip(subfigs, maps, rows_per):
        sub.suptitle(f"{name}  {m.shape[0]} x {m.shape[1]} x {m.shape[2]}", fontsize=8)
        axes = sub.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= m.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(m[k], cmap="gray" if name == "input" else "magma")
            if m.shape[0] > 1:
                ax.set_title(str(k), fontsize=6, pad=1)
    return plotting.save_figure(fig, path, title, title_size=9)


@command("featuremaps")
def main(argv=None):
    p = command_parser("featuremaps", __doc__)
    add_input_arguments(p)
    p.add_argument("--layer", type=nonnegative_int, default=None, metavar="L", help="only the convolution that is layer L")
    args = p.parse_args(argv)
    run = Run(args.checkpoint)
    path = figure_path(run, args, "featuremaps.png")
    raw, x, _, what = pick_input(run, args)
    maps = feature_maps(run.model, x, args.layer)
    title = f"feature maps of {what} through {run.path}"
    written = plot_feature_maps(maps, path, title)
    if written:
        print(f"{title}: {', '.join(f'{n} {m.shape}' for n, m in maps[1:])}\nfigure: {written}")
    else:
        print(title + "\n\n" + maxima_text(maps[1:]))
    return 0
