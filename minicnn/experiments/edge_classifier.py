"""``minicnn edges``, experiment 2: edge detectors emerge in a small CNN trained to classify edge directions.

    minicnn edges --seed 0
    minicnn edges --seeds 0,1,2,3,4      # the median over 5 seeds

(``python -m minicnn edges`` and, in the source, ``python experiments/edge_classifier.py`` are the same.)

Conv2D(1, 8, 3) -> ReLU -> MaxPool2D over the whole map -> Flatten -> Dense(8, 8)
learns, from random weights, to tell in which of 8 directions a noisy
synthetic edge gets brighter.  Afterwards each first-layer kernel is printed
beside its best match among the oriented Sobel kernels (0, 45, 90, 135
degrees, either polarity) with the similarity.  Writes under --out, per seed,
metrics.json, weights.npz (``minicnn inspect`` reads it) and
kernels.png when matplotlib is installed, plus summary.json over all seeds.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from minicnn.edges.edge_task import train_edge_classifier
from minicnn.edges.inspect_kernels import describe_kernels, plot_kernel_report
from minicnn.utils.cli import float_in, int_in, nonnegative_int, nonnegative_int_list, positive_int, run_command, write_json


def build_parser():
    p = argparse.ArgumentParser(prog="minicnn edges", description=__doc__.replace("``", "'"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="(default: 0)")
    p.add_argument("--seeds", type=nonnegative_int_list, default=None, help="several seeds, e.g. 0,1,2,3,4 (default: just --seed)")
    p.add_argument("--filters", type=positive_int, default=8, help="first-layer filters (default: 8)")
    p.add_argument("--classes", type=int, choices=(4, 8), default=8,
                   help="8 directions, or 4 orientations of either polarity (default: 8)")
    p.add_argument("--size", type=int_in(1, 1024), default=16, help="image side in pixels, up to 1024 (default: 16)")
    p.add_argument("--train", type=positive_int, default=4000, help="training images (default: 4000)")
    p.add_argument("--val", type=positive_int, default=1000, help="validation images (default: 1000)")
    p.add_argument("--noise", type=float_in(0), default=0.2, help="pixel noise std on 0..1 images, >= 0 (default: 0.2)")
    p.add_argument("--min-contrast", type=float_in(0, 1), default=0.5, help="edge contrast at least, in [0, 1] (default: 0.5)")
    p.add_argument("--epochs", type=positive_int, default=10, help="(default: 10)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    p.add_argument("--lr", type=float_in(0, 10, low_open=True), default=0.1,
                   help="peak learning rate, cosine decay, in (0, 10] (default: 0.1)")
    p.add_argument("--momentum", type=float_in(0, 1, high_open=True), default=0.9, help="in [0, 1) (default: 0.9)")
    p.add_argument("--weight-decay", type=float_in(0), default=1e-3, help=">= 0 (default: 1e-3)")
    p.add_argument("--warmup", type=nonnegative_int, default=200, help="warm-up steps (default: 200)")
    p.add_argument("--out", default="runs/edge_classifier", help="output folder (default: runs/edge_classifier)")
    return p


def run_seed(args, seed, out):
    out.mkdir(parents=True, exist_ok=True)
    result = train_edge_classifier(
        rng=np.random.default_rng(seed), n_filters=args.filters, size=args.size, n_train=args.train,
        n_val=args.val, noise=args.noise, min_contrast=args.min_contrast, classes=args.classes,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_steps=args.warmup)
    W = result["kernels"][:, None]
    text, matches = describe_kernels(W)
    print(text)
    sims = [m["similarity"] for m in result["matches"]]
    print(f"\nseed {seed}: validation accuracy {result['val_accuracy']:.3f}; median |similarity| "
          f"{result['median_similarity']:.3f} over {len(sims)} kernels; {result['seconds']:.1f} s\n")
    metrics = {"seed": seed, "val_accuracy": result["val_accuracy"], "median_similarity": result["median_similarity"],
               "matches": result["matches"], "seconds": result["seconds"], "kernels": result["kernels"].tolist(),
               "history": result["history"]}
    write_json(out / "metrics.json", metrics, indent=2)
    np.savez(out / "weights.npz", **result["state"])
    plot_kernel_report(W, matches, out / "kernels.png", title=f"first-layer kernels of the edge classifier, seed {seed}")
    return metrics


def main(argv=None):
    """``minicnn edges`` as a function: the summary it wrote to --out/summary.json."""
    args = build_parser().parse_args(argv)
    seeds = args.seeds or [args.seed]
    out = Path(args.out)
    runs = [run_seed(args, seed, out / f"seed{seed}" if len(seeds) > 1 else out) for seed in seeds]
    summary = {
        "seeds": seeds,
        "median_similarity_per_seed": [r["median_similarity"] for r in runs],
        "val_accuracy_per_seed": [r["val_accuracy"] for r in runs],
        "median_of_seed_medians": float(np.median([r["median_similarity"] for r in runs])),
        "median_over_all_kernels": float(np.median([abs(m["similarity"]) for r in runs for m in r["matches"]])),
        "config": vars(args),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary, indent=2)
    if len(seeds) > 1:
        print("per seed median |similarity|: " + ", ".join(f"{s}: {v:.3f}" for s, v in
                                                          zip(seeds, summary["median_similarity_per_seed"])))
        print(f"median over seeds: {summary['median_of_seed_medians']:.3f}; "
              f"median over all {sum(len(r['matches']) for r in runs)} kernels: {summary['median_over_all_kernels']:.3f}")
    return summary


if __name__ == "__main__":
    sys.exit(run_command(main))
