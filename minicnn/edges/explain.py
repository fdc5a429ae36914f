"""``python -m minicnn explain``: slide a kernel over a small image, one window at a time.

At each position the walk-through prints the image with the window marked,
the kernel, the element-wise products, their sum, and the feature map filling
in.  At the end it recomputes the map with ``minicnn.nn.Conv2D`` and says
whether the two agree, then shows why convolution needs so few weights.

Examples
--------
    python -m minicnn explain                         # 5x5 image, vertical-edge kernel
    python -m minicnn explain --example step          # 7x7 dark-to-bright, Sobel x
    python -m minicnn explain --kernel sobel_y --stride 2 --padding 1
    python -m minicnn explain --image "0,0,1;0,0,1;0,0,1" --kernel "1,-1"
    python -m minicnn explain --animate --delay 0.5   # redraw in place
    python -m minicnn explain --backward              # the backward pass: dL/dW and dL/dx as sums
"""
import argparse
import sys
import time
from typing import NamedTuple

import numpy as np

from minicnn.edges.filters import KERNEL_NAMES, get_kernel
from minicnn.utils.cli import command, float_in, int_in, positive_int

EXAMPLES = {
    "small": {
        "image": [[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [2, 1, 0, 1, 2], [0, 1, 2, 3, 1]],
        "kernel": "1,0,-1;1,0,-1;1,0,-1",
        "kernel_name": "vertical edge (1, 0, -1 in every row: brighter on the left gives positive values)",
        "about": "a 5x5 image",
    },
    "step": {
        "image": [[0, 0, 0, 9, 9, 9, 9]] * 7,
        "kernel": "sobel_x",
        "kernel_name": "sobel_x",
        "about": "a 7x7 image, dark on the left and bright on the right",
    },
}
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


class Step(NamedTuple):
    """One position of the window: output cell (row, col), patch, products and their sum."""

    row: int
    col: int
    patch: np.ndarray
    products: np.ndarray
    total: float


def parse_matrix(text, what="matrix"):
    """Parse ``"1,0,-1;1,0,-1"`` (rows split by ';', values by ',') into a 2-D float array."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.strip().split(";")]
    except ValueError:
        raise ValueError(f"{what} must be numbers like '1,0,-1;1,0,-1;1,0,-1' (rows split by ';'), got {text!r}") from None
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{what} rows must all have the same length, got {text!r}")
    matrix = np.array(rows, dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} must hold finite numbers, got {text!r} (no inf or nan)")
    return matrix


def resolve_kernel(spec):
    """A kernel name from ``minicnn.edges.filters`` or a literal matrix -> (name, 2-D float64 array)."""
    if any(ch.isdigit() for ch in spec):
        return "custom kernel", parse_matrix(spec, "kernel")
    if spec.lower() not in KERNEL_NAMES:
        raise ValueError(f"unknown kernel {spec!r}; give a name ({', '.join(KERNEL_NAMES)}) "
                         f"or numbers like '1,0,-1;1,0,-1;1,0,-1'")
    return spec.lower(), get_kernel(spec, np.float64)


def output_size(n, k, stride, padding):
    return (n + 2 * padding - k) // stride + 1


def slide(image, kernel, stride=1, padding=0):
    """Yield every :class:`Step` of the cross-correlation, row by row.

    Shape: image (H, W), kernel (KH, KW); positions (H_out * W_out)
    """
    padded = np.pad(image, padding)
    KH, KW = kernel.shape
    H_out = output_size(image.shape[0], KH, stride, padding)
    W_out = output_size(image.shape[1], KW, stride, padding)
    for i in range(H_out):
        for j in range(W_out):
            patch = padded[i * stride:i * stride + KH, j * stride:j * stride + KW]
            products = patch * kernel
            yield Step(i, j, patch, products, float(products.sum()))


def format_numbers(values):
    """A formatter for these numbers: integers without decimals if all are whole, else up to 4 decimals."""
    values = np.asarray(values, dtype=np.float64)
    if np.all(values == np.round(values)):
        return lambda v: f"{int(round(v))}"
    return lambda v: f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) >= 1e-12 else "0"


def _grid(matrix, fmt, width, mark=None, blank=None):
    """Lines of a matrix; cells inside ``mark`` = (r0, r1, c0, c1) get [brackets]; ``blank`` cells show '.'."""
    lines = []
    for r, row in enumerate(matrix):
        cells = []
        for c, v in enumerate(row):
            text = "." if blank is not None and blank[r, c] else fmt(v)
            inside = mark is not None and mark[0] <= r < mark[1] and mark[2] <= c < mark[3]
            cells.append(f"[{text:>{width}}]" if inside else f" {text:>{width}} ")
        lines.append("".join(cells).rstrip())
    return lines


def render_step(step, index, total_steps, padded, kernel, fmap, filled, stride):
    """The text for one step: image with window, kernel, products, sum and the map so far."""
    from minicnn.edges.viz import side_by_side

    KH, KW = kernel.shape
    fmt_in, fmt_k = format_numbers(padded), format_numbers(kernel)
    fmt_p, fmt_out = format_numbers(step.products), format_numbers(np.where(filled, fmap, 0))
    w_in = max(len(fmt_in(v)) for v in padded.ravel())
    w_p = max(len(fmt_p(v)) for v in step.products.ravel())
    r0, c0 = step.row * stride, step.col * stride
    header = (f"step {index} of {total_steps}: output cell (row {step.row}, col {step.col}) "
              f"<- window rows {r0}..{r0 + KH - 1}, cols {c0}..{c0 + KW - 1}")
    blocks = [
        _grid(padded, fmt_in, w_in, mark=(r0, r0 + KH, c0, c0 + KW)),
        _grid(kernel, fmt_k, max(len(fmt_k(v)) for v in kernel.ravel())),
        _grid(step.products, fmt_p, w_p),
    ]
    body = side_by_side(blocks, ["image [window]", "kernel", "window * kernel"], gap=3)
    terms = " + ".join(fmt_p(v) if v >= 0 else f"({fmt_p(v)})" for v in step.products.ravel())
    fmap_lines = _grid(fmap, fmt_out, max(len(fmt_out(v)) for v in fmap.ravel()), blank=~filled)
    return "\n".join([header, "", body, "", f"sum = {terms} = {fmt_p(step.total)}", "",
                      "feature map so far:"] + fmap_lines)


MAX_STEPS = 50   # steps printed without --all; the feature map is always computed in full


def walk_through(image, kernel, stride=1, padding=0, out=None, animate=False, delay=0.6, max_steps=None):
    """Print the walk-through to ``out`` (default stdout) and return the feature map (H_out, W_out).

    With ``max_steps`` only the first that many steps are printed (every step
    is still computed) and a line says how many were skipped.
    """
    out = sys.stdout if out is None else out
    KH, KW = kernel.shape
    H, W = image.shape
    H_out, W_out = output_size(H, KH, stride, padding), output_size(W, KW, stride, padding)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"a {KH}x{KW} kernel does not fit a {H}x{W} image with padding {padding}")
    print(f"output size: H_out = (H + 2*padding - KH) // stride + 1 = ({H} + 2*{padding} - {KH}) // {stride} + 1 = {H_out}",
          file=out)
    print(f"             W_out = (W + 2*padding - KW) // stride + 1 = ({W} + 2*{padding} - {KW}) // {stride} + 1 = {W_out}",
          file=out)
    if padding:
        print(f"the image is padded with {padding} ring(s) of zeros, so it is {H + 2 * padding}x{W + 2 * padding}",
              file=out)
    print("", file=out)
    padded = np.pad(image, padding)
    fmap = np.zeros((H_out, W_out))
    filled = np.zeros((H_out, W_out), dtype=bool)
    total = H_out * W_out
    for index, step in enumerate(slide(image, kernel, stride, padding), 1):
        fmap[step.row, step.col] = step.total
        filled[step.row, step.col] = True
        if max_steps is not None and index > max_steps:
            continue
        text = render_step(step, index, H_out * W_out, padded, kernel, fmap, filled, stride)
        if animate:
            out.write(CLEAR + text + "\n")
            out.flush()
            time.sleep(delay)
        else:
            print(text + "\n", file=out)
    if max_steps is not None and total > max_steps:
        print(f"... {total - max_steps} more steps not shown ({max_steps} of {total} shown); "
              f"--all shows every one\n", file=out)
    return fmap


def check_against_conv2d(image, kernel, stride, padding, fmap):
    """Recompute the map with Conv2D (float64, no bias); return the max absolute difference."""
    from minicnn.nn import Conv2D

    KH, KW = kernel.shape
    conv = Conv2D(1, 1, (KH, KW), stride=stride, padding=padding, bias=False,
                  rng=np.random.default_rng(0), dtype=np.float64)
    conv.params["W"][...] = kernel
    expected = conv.forward(image[None, None].astype(np.float64))[0, 0]
    return float(np.max(np.abs(expected - fmap)))


def weight_sharing_note(kernel, image_shape):
    KH, KW = kernel.shape
    H, W = image_shape
    return "\n".join([
        "weight sharing:",
        f"  this {KH}x{KW} filter has {KH * KW} weights (plus 1 bias), and the same {KH * KW} numbers were used at every",
        f"  position above; on a {H}x{W} image or a 1000x1000 one it would still be {KH * KW}.",
        "  a dense layer from a 28x28 image (784 pixels) to 784 outputs needs one weight per pair:",
        "  784 * 784 = 614,656 weights.",
    ])


def backward_walk(image, kernel, out=None):
    """Print the backward pass of the Sobel task (``minicnn.edges.backprop``) as the studio's backward stepper
    shows it: the loss, delta, every cell of dL/dW and dL/dx as its sum of products, each beside
    Conv2D.backward's value.  Returns the :class:`~minicnn.edges.backprop.Backward`."""
    from minicnn.edges import backprop

    out = sys.stdout if out is None else out
    b = backprop.backward(image, kernel)
    f = format_numbers(np.concatenate([b.fmap.ravel(), b.target.ravel()]))
    say = lambda *lines: print(*lines, sep="\n", file=out)  # noqa: E731
    say("loss L = mean((x * W - x * sobel_x)**2), the task learn_sobel solves, on this one image", "",
        "the kernel's map:", *_grid(b.fmap, f, 4), "Sobel x's map (the target):", *_grid(b.target, f, 4),
        f"L = {b.loss:.6g}", "",
        "delta = dL/dmap = 2 (map - target) / number of cells:", *_grid(b.delta, _four, 8), "")
    say("dL/dW[i, j] = sum over r, c of delta[r, c] * x[r + i, c + j]:")
    for cell in backprop.dW_cells(b):
        terms = " + ".join(_four(v) if v >= 0 else f"({_four(v)})" for v in cell.products.ravel())
        say(f"  dL/dW[{cell.row}, {cell.col}] = {terms} = {_four(cell.total)}"
            f"   (Conv2D.backward: {_four(b.dW[cell.row, cell.col])})")
    say("", "dL/dx = delta padded with 2 rings of zeros, convolved with the kernel turned 180 degrees:",
        *_grid(backprop.flipped(b.kernel), format_numbers(b.kernel), 4))
    for cell in backprop.dx_cells(b):
        terms = " + ".join(_four(v) if v >= 0 else f"({_four(v)})" for v in cell.products.ravel())
        say(f"  dL/dx[{cell.row}, {cell.col}] = {terms} = {_four(cell.total)}"
            f"   (Conv2D.backward: {_four(b.dx[cell.row, cell.col])})")
    return b


def backprop_difference(b):
    """The largest difference between a written-out sum (``minicnn.edges.backprop``) and Conv2D.backward's value."""
    from minicnn.edges import backprop

    return max([abs(c.total - b.dW[c.row, c.col]) for c in backprop.dW_cells(b)]
               + [abs(c.total - b.dx[c.row, c.col]) for c in backprop.dx_cells(b)])


def _four(v):
    """A number with up to 4 decimals, no trailing zeros, and "0" for a zero (whatever its sign)."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0", "") else text


@command("explain")
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn explain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="kernel names: " + ", ".join(KERNEL_NAMES))
    p.add_argument("--example", choices=sorted(EXAMPLES), default="small",
                   help="built-in image (and kernel): small = 5x5, step = 7x7 dark-to-bright (default: small)")
    p.add_argument("--image", default=None, help="your own image as numbers, rows split by ';' (default: the example's)")
    p.add_argument("--kernel", default=None, help="a kernel name or numbers like '1,0,-1;1,0,-1;1,0,-1' "
                                                  "(write --kernel=-1,1 when it starts with a minus) "
                                                  "(default: the example's)")
    p.add_argument("--stride", type=positive_int, default=1, help="step between windows, >= 1 (default: 1)")
    p.add_argument("--padding", type=int_in(0, 100), default=0, help="rings of zeros around the image, 0 to 100 (default: 0)")
    p.add_argument("--backward", action="store_true",
                   help="walk through the backward pass instead: dL/dW and dL/dx of the Sobel x task, cell by cell "
                        "(a 3x3 kernel; the studio's backward stepper)")
    p.add_argument("--all", action="store_true", help=f"print every step (default: the first {MAX_STEPS})")
    p.add_argument("--animate", action="store_true", help="redraw in place with a delay (terminal only)")
    p.add_argument("--delay", type=float_in(0, 60), default=0.6, help="seconds per step with --animate, 0 to 60 (default: 0.6)")
    args = p.parse_args(argv)
    example = EXAMPLES[args.example]
    # A ValueError below is the user's: minicnn.cli.command prints it as one line, exit code 2.
    image = parse_matrix(args.image, "image") if args.image else np.array(example["image"], dtype=np.float64)
    name, kernel = resolve_kernel(args.kernel or example["kernel"])
    name = name if args.kernel else example["kernel_name"]
    animate = args.animate and sys.stdout.isatty()
    if args.animate and not animate:
        print("minicnn explain: --animate needs a terminal; printing every step instead", file=sys.stderr)
    about = "your image" if args.image else example["about"]
    if args.backward:
        if args.stride != 1 or args.padding != 0:
            raise ValueError(f"--backward walks through stride 1 and padding 0 only, got --stride {args.stride} "
                             f"--padding {args.padding}")
        print(f"backward pass on {about}\nkernel: {name}\n")
        b = backward_walk(image, kernel)
        worst = backprop_difference(b)
        agree = worst <= 1e-9 * max(1.0, float(np.abs(b.dW).max()), float(np.abs(b.dx).max()))
        print(f"\nthe sums equal Conv2D.backward's: {'yes' if agree else 'NO'} (largest difference {worst:.3g})")
        return 0 if agree else 1
    print(f"cross-correlation of {about}\nkernel: {name}, stride {args.stride}, padding {args.padding}\n")
    fmap = walk_through(image, kernel, args.stride, args.padding, animate=animate, delay=args.delay,
                        max_steps=None if args.all else MAX_STEPS)
    fmt = format_numbers(fmap)
    width = max(len(fmt(v)) for v in fmap.ravel())
    print("feature map:")
    print("\n".join(_grid(fmap, fmt, width)))
    diff = check_against_conv2d(image, kernel, args.stride, args.padding, fmap)
    agree = diff <= 1e-9 * max(1.0, float(np.abs(fmap).max()))
    print(f"\nminicnn.nn.Conv2D computes the same map: {'yes, they agree' if agree else 'NO, they differ'} "
          f"(largest difference {diff:.3g})\n")
    print(weight_sharing_note(kernel, image.shape))
    return 0 if agree else 1
