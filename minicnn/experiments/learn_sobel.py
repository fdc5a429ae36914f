"""``minicnn sobel``, experiment 1: a Conv2D(1, 2, 3) starts from random weights and learns Sobel x and Sobel y.

    minicnn sobel --seed 0
    minicnn sobel --seed 0 --noise 0.1
    minicnn sobel --seed 0 --noise 0.1 --clean-targets   # must also denoise

(``python -m minicnn sobel`` and, in the source, ``python experiments/learn_sobel.py`` are the same.)

The targets are synthetic edge-rich images filtered with the two Sobel
kernels; training (minicnn's SGD on mean squared error) stops when both
learned kernels reach --target-cosine or after --steps.  Prints each learned
kernel beside its target with the cosine similarity and relative error, and
writes under --out: metrics.json, loss_curve.csv, weights.npz (inspect it with
``minicnn inspect``), and kernels.png / curves.png when matplotlib
is installed.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from minicnn.edges import viz
from minicnn.edges.filters import get_kernel
from minicnn.edges.sobel_task import TARGETS, train_sobel
from minicnn.exercises.adapters import NAME as MINE
from minicnn.exercises.adapters import NEEDS, describe_mine, use_mine
from minicnn.nn.ops import BUILT_IN as ENGINES
from minicnn.nn.ops import describe as describe_engine
from minicnn.nn.ops import use_engine
from minicnn.utils.cli import float_in, int_in, nonnegative_int, positive_int, run_command, write_json


def build_parser():
    p = argparse.ArgumentParser(prog="minicnn sobel", description=__doc__.replace("``", "'"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="(default: 0)")
    p.add_argument("--steps", type=positive_int, default=2000, help="step budget (default: 2000)")
    p.add_argument("--lr", type=float_in(0, 10, low_open=True), default=0.2, help="SGD learning rate, in (0, 10] (default: 0.2)")
    p.add_argument("--momentum", type=float_in(0, 1, high_open=True), default=0.9, help="in [0, 1) (default: 0.9)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per step (default: 16)")
    p.add_argument("--images", type=positive_int, default=128, help="training images (default: 128)")
    p.add_argument("--size", type=int_in(1, 1024), default=24, help="image side in pixels, up to 1024 (default: 24)")
    p.add_argument("--noise", type=float_in(0), default=0.0, help="std of Gaussian noise on the 0..1 images, >= 0 (default: 0.0)")
    p.add_argument("--clean-targets", action="store_true",
                   help="targets from the clean images, so the layer must also remove the noise (default: off)")
    p.add_argument("--target-cosine", type=float_in(0, 1, low_open=True), default=0.9999,
                   help="stop when both kernels reach this cosine similarity, in (0, 1] (default: 0.9999)")
    p.add_argument("--engine", choices=ENGINES, default="fast",
                   help="the code that computes the layer: loops, textbook (minicnn/nn/textbook.py) or fast (default: fast)")
    p.add_argument("--mine", default=None, metavar="DIR",
                   help="run the layer and the optimizer on your passed exercises in DIR (minicnn exercises)")
    p.add_argument("--out", default="runs/learn_sobel", help="output folder (default: runs/learn_sobel)")
    return p


def main(argv=None):
    """``minicnn sobel`` as a function: the metrics it wrote to --out/metrics.json."""
    args = build_parser().parse_args(argv)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    yours = []
    if args.mine:
        used, unused = use_mine(args.mine)
        print(describe_mine(used, unused, args.mine))
        yours = [name for op in ("conv2d", "sgd_update") if op in used for name in NEEDS[op]]
    with use_engine(MINE if args.mine else args.engine):
        result = train_sobel(rng=rng, steps=args.steps, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size,
                             n_images=args.images, size=args.size, noise=args.noise, clean_targets=args.clean_targets,
                             target_cosine=args.target_cosine)
        engine = describe_engine(("conv2d", "sgd_update"))

    for f, name in enumerate(TARGETS):
        print(viz.kernel_vs_reference(result["kernels"][f], get_kernel(name), f"learned filter {f}", name,
                                      similarity=result["cosine"][name]))
        print(f"relative error: {result['relative_error'][name]:.4f}\n")
    status = "reached" if result["converged"] else "did not reach"
    if yours and result["converged"]:
        print(f"your {' and '.join(yours)} learned these kernels")
    print(f"seed {args.seed}, engine {engine}: {status} cosine {args.target_cosine} in {result['steps']} steps, "
          f"{result['seconds']:.2f} s; cosines " + ", ".join(f"{k} {v:.5f}" for k, v in result["cosine"].items()))
    if "optimal_cosine" in result:
        print("with clean targets the best possible 3x3 kernels (least squares) have cosine "
              + ", ".join(f"{k} {v:.4f}" for k, v in result["optimal_cosine"].items())
              + " with Sobel; learned vs best: "
              + ", ".join(f"{k} {v:.4f}" for k, v in result["cosine_to_optimal"].items()))

    metrics = {
        "seed": args.seed,
        "engine": engine,
        "cosine": result["cosine"],
        "relative_error": result["relative_error"],
        "steps": result["steps"],
        "seconds": result["seconds"],
        "converged": result["converged"],
        "kernels": {k: result["kernels"][f].tolist() for f, k in enumerate(TARGETS)},
        "config": vars(args),
    }
    for key in ("optimal_cosine", "cosine_to_optimal"):
        if key in result:
            metrics[key] = result[key]
    write_json(out / "metrics.json", metrics, indent=2)
    history = np.array(result["history"])
    np.savetxt(out / "loss_curve.csv", history, delimiter=",", header="step,loss,cosine_sobel_x,cosine_sobel_y",
               comments="", fmt=["%d", "%.6g", "%.6f", "%.6f"])
    np.savez(out / "weights.npz", **result["state"])
    refs = np.stack([get_kernel(k) for k in TARGETS])
    titles = [f"{k} {result['cosine'][k]:+.4f}" for k in TARGETS]
    viz.plot_kernel_matches(result["kernels"], refs, titles, out / "kernels.png")
    viz.plot_curves(history[:, 0], history[:, 1], out / "curves.png",
                    similarities={k: history[:, 2 + f] for f, k in enumerate(TARGETS)})
    print(f"results in {out}/")
    return metrics


if __name__ == "__main__":
    sys.exit(run_command(main))
