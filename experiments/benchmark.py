"""Benchmark minicnn on REF-CNN and BN-CNN: naive loops vs Conv2D, layer by layer, training throughput, memory, and PyTorch.

    python experiments/benchmark.py --threads 2 --torch          # the full run (PyTorch optional)
    python experiments/benchmark.py --quick                      # a smoke test in a few seconds
    python experiments/benchmark.py --networks bn-cnn --torch    # only BN-CNN in sections 2, 3 and 5
    python experiments/benchmark.py --plain --threads 1 --torch  # only the README's loop, as a user writes it
    python experiments/benchmark.py --plain --torch --torch-python ../torchvenv/bin/python  # PyTorch in a venv of its own

The networks are in experiments/benchmarking.py (REF-CNN: conv-ReLU-pool twice,
dense 128, dense 10; BN-CNN: conv-BN-ReLU-pool twice, dense 10, in training mode).
Sections 2 (per layer), 3 (training) and 5 (PyTorch) run for each of --networks;
sections 1 (naive loops), 2b (the layers beyond REF-CNN) and 4 (peak memory) are about
REF-CNN's shapes only.  Every figure is a median over --repeats after a warm-up.  With
--torch (and PyTorch importable) each network runs in PyTorch with minicnn's weights,
the logits, gradients and running statistics are compared, and training steps are
timed alternately (minicnn, torch, minicnn, ...) in this process, then each framework
alone in its own process: the ratio is minicnn / torch.  Peak memory is measured in a
fresh process per framework.  Results are printed and written as JSON (--json,
default <out>/benchmark.json); every row of "layers", "training", "torch"."runs" and
"torch"."alone" names its "network", rows ordered by --networks, then by batch.

--plain runs only section 6: the training step as a user's script writes it (the README's
loop with every default; PyTorch's usual zero_grad/backward/step), each framework in fresh
processes, alternated, with nothing in the environment but the thread count (no
OPENBLAS_THREAD_TIMEOUT).  Every comparison of fresh processes gives min, median and max
per framework over --rounds processes, and the ratio of the medians.
"""
import os
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _threads_from_argv(argv):
    """--threads N (or --threads=N) from the raw command line, default: all cores."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return str(os.cpu_count() or 1)


if __name__ == "__main__":   # BLAS reads these once, when NumPy is imported: set them first
    for _var in THREAD_VARS:
        os.environ[_var] = _threads_from_argv(sys.argv[1:])

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from minicnn.utils.cli import int_in, nonnegative_int, positive_int  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))   # the timing helpers beside this script
import benchmarking as bench  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int_in(1, 1024), default=os.cpu_count() or 1, help="BLAS and PyTorch threads (default: all cores)")
    p.add_argument("--torch", action="store_true", help="compare with PyTorch if it is importable (default: off)")
    p.add_argument("--quick", action="store_true", help="tiny repeats and batches: a smoke test (default: off)")
    p.add_argument("--repeats", type=positive_int, default=30, help="timed calls per figure (default: 30; --quick: 3)")
    p.add_argument("--batches", type=str, default="64,256", help="batch sizes for layers and training (default: 64,256)")
    p.add_argument("--networks", type=_networks, default="ref-cnn,bn-cnn",
                   help=f"comma-separated networks for sections 2, 3 and 5, of {', '.join(bench.NETWORKS)} (default: ref-cnn,bn-cnn)")
    p.add_argument("--memory-steps", type=positive_int, default=200, help="training steps in each peak-memory run (default: 200)")
    p.add_argument("--rounds", type=positive_int, default=5, help="processes per framework in the alone comparison (default: 5)")
    p.add_argument("--epoch", action="store_true", help="also time one real 60,000-image epoch (default: off)")
    p.add_argument("--plain", action="store_true",
                   help="only the plain-script comparison (section 6), in fresh processes (default: off)")
    p.add_argument("--torch-python", type=str, default=None,
                   help="with --plain: the Python that runs PyTorch's processes, e.g. a venv of its own, so that "
                        "neither framework's libraries are installed beside the other's (default: this one)")
    p.add_argument("--engine", choices=("loops", "textbook", "fast"), default="fast",
                   help="the implementation minicnn runs on (minicnn.nn.ops; default: fast)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="(default: 0)")
    p.add_argument("--out", type=str, default="runs/benchmark", help="output folder (default: runs/benchmark)")
    p.add_argument("--json", type=str, default=None, help="JSON path (default: <out>/benchmark.json)")
    return p.parse_args(argv)


def _networks(text):
    """--networks: comma-separated names from bench.NETWORKS, as a list."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in bench.NETWORKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names of {', '.join(bench.NETWORKS)}, got {text!r}")
    return names


def _child_env(threads):
    """The environment of a fresh process of this benchmark: the thread count pinned, this repository importable."""
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _rerun_with_threads(argv, threads):
    """NumPy was imported before the thread count could be pinned: run this script again in a fresh process."""
    return subprocess.call([sys.executable, str(Path(__file__).resolve())] + list(argv), env=_child_env(threads))


def _worker(*args, threads):
    """One measurement in a fresh process (python experiments/benchmarking.py ...), its JSON result."""
    out = subprocess.run([sys.executable, str(Path(bench.__file__).resolve()), *map(str, args)],
                         env=_child_env(threads), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(times):
    """min, median and max of per-process times (ms)."""
    return {"min": float(np.min(times)), "median": float(np.median(times)), "max": float(np.max(times))}


def _alternated(run_one, frameworks, rounds):
    """{framework: [ms of each process]}, the frameworks' processes taking turns, ``rounds`` each."""
    runs = {fw: [] for fw in frameworks}
    for _ in range(rounds):
        for fw in frameworks:
            runs[fw].append(run_one(fw))
    return runs


def _comparison(network, batch, steps, rounds, runs):
    row = {"network": network, "batch": batch, "rounds": rounds, "steps_per_process": steps}
    for fw, times in runs.items():
        spread = _spread(times)
        row.update({f"{fw}_step_ms": spread["median"], f"{fw}_spread_ms": spread, f"{fw}_runs_ms": times})
    if "torch" in runs:
        row["ratio"] = row["minicnn_step_ms"] / row["torch_step_ms"]
    return row


def _alone(network, batch, steps, rounds, threads, engine="fast"):
    """Each framework alone in its own process, processes alternated: min/median/max of the per-process medians."""
    runs = _alternated(lambda fw: _worker("alone", fw, batch, steps, threads, network, engine, threads=threads)["step_ms"],
                       ("minicnn", "torch"), rounds)
    return _comparison(network, batch, steps, rounds, runs)


def _plain_env(threads):
    """A user's environment: the thread count set, nothing else tuned (no OPENBLAS_THREAD_TIMEOUT)."""
    return {k: v for k, v in _child_env(threads).items() if k != "OPENBLAS_THREAD_TIMEOUT"}


def _torch_in(python):
    """PyTorch's version in the interpreter ``python``, or None if it cannot import it.  Exits saying what to
    install there if it imports PyTorch but not minicnn, whose network and weights the PyTorch side copies."""
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    check = subprocess.run([python, "-c", "import minicnn"], env=_child_env(1), capture_output=True, text=True)
    if check.returncode != 0:
        error = (check.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"--torch-python {python} imports PyTorch {out.stdout.strip()} but not minicnn ({error}).  "
                         f"Its PyTorch steps run minicnn's network with minicnn's weights, so that interpreter "
                         f"needs minicnn's dependencies too: {python} -m pip install numpy scipy tqdm")
    return out.stdout.strip()


def _plain(network, batch, steps, rounds, threads, frameworks, torch_python=None):
    """The README's loop as a user's script runs it, each framework in fresh processes, alternated
    (PyTorch's in ``torch_python`` when given)."""
    def run_one(fw):
        python = torch_python if fw == "torch" and torch_python else sys.executable
        out = subprocess.run([python, str(Path(bench.__file__).resolve()), "plain", fw, str(batch), str(steps),
                              str(threads), network], env=_plain_env(threads), capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["step_ms"]
    return _comparison(network, batch, steps, rounds, _alternated(run_one, frameworks, rounds))


def _spread_columns(frameworks):
    columns = [("network", lambda r: r["network"]), ("batch", lambda r: str(r["batch"]))]
    for fw in frameworks:
        columns.append((f"{fw} ms min / median / max", lambda r, fw=fw: " / ".join(
            f"{r[f'{fw}_spread_ms'][k]:.2f}" for k in ("min", "median", "max"))))
    if "torch" in frameworks:
        columns.append(("minicnn/torch (medians)", lambda r: f"{r['ratio']:.2f}x"))
    return columns


def _table(rows, columns):
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row) for _, fmt in columns) + " |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if any(os.environ.get(var) != str(args.threads) for var in THREAD_VARS[:2]):
        return _rerun_with_threads(argv, args.threads)
    if args.plain:
        return _run_plain(args, argv)
    from minicnn.nn.ops import use_engine
    with use_engine(args.engine):
        return _run(args, argv)


def _run_plain(args, argv):
    """Section 6 alone: the README's loop in fresh processes, each framework's min/median/max and the ratio."""
    batches = [8, 16] if args.quick else [int(b) for b in args.batches.split(",")]
    steps, rounds = (5, 1) if args.quick else (max(args.repeats, 40), args.rounds)
    versions = bench.versions()
    if args.torch_python:
        versions.pop("torch", None)
        torch_version = _torch_in(args.torch_python) if args.torch else None
        if torch_version:
            versions["torch"] = f"{torch_version} (in {args.torch_python})"
        have_torch = bool(torch_version)
    else:
        have_torch = args.torch and bench.torch_available()
    frameworks = ("minicnn", "torch") if have_torch else ("minicnn",)
    from minicnn.engine import cblas
    result = {"command": "python experiments/benchmark.py " + " ".join(argv), "threads": args.threads,
              "machine": bench.machine_info(), "versions": versions, "blas": cblas.BACKEND,
              "frameworks": list(frameworks)}
    result["plain"] = [_plain(net, b, steps, rounds, args.threads, frameworks, args.torch_python)
                       for net in args.networks for b in batches]
    print(f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; threads {args.threads}; "
          f"{versions}; minicnn's BLAS: {cblas.BACKEND}\n\n6. the README's training step as a user's script writes it, {rounds} fresh "
          f"processes per framework, alternated ({steps} steps each; ms per step)\n"
          + _table(result["plain"], _spread_columns(frameworks)))
    if args.torch and len(frameworks) == 1:
        print(f"PyTorch is not installed{' in ' + args.torch_python if args.torch_python else ''}: minicnn alone.  "
              "Get it with `pip install torch==2.13.0` (CPU build).")
    path = Path(args.json) if args.json else Path(args.out) / "plain.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return 0


def _run(args, argv):
    quick = args.quick
    repeats = 3 if quick else args.repeats
    batches = [8, 16] if quick else [int(b) for b in args.batches.split(",")]
    networks = args.networks
    rng = np.random.default_rng(args.seed)
    result = {"command": "python experiments/benchmark.py " + " ".join(argv), "quick": quick, "threads": args.threads,
              "networks": networks, "engine": bench.engine_info(),
              "machine": bench.machine_info(), "versions": bench.versions(), "repeats": repeats}
    print(f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, load average "
          f"{result['machine']['load_average_1_5_15']}; threads {args.threads}; {result['versions']}; {result['engine']}")

    result["sgemm_gflops"] = bench.sgemm_gflops(3 if quick else 10, size=512 if quick else 2048)
    print(f"\nsgemm {'512' if quick else '2048'}x{'512' if quick else '2048'} float32: {result['sgemm_gflops']:.1f} GFLOP/s")

    result["naive_vs_conv"] = bench.naive_vs_conv([1, 64], repeats, naive_images=2 if quick else 16, rng=rng)
    print("\n1. naive loops vs Conv2D.forward (ms per image)\n" + _table(result["naive_vs_conv"], [
        ("layer", lambda r: r["layer"]), ("batch", lambda r: str(r["batch"])),
        ("naive", lambda r: f"{r['naive_ms_per_image']:.2f}"), ("Conv2D", lambda r: f"{r['conv2d_ms_per_image']:.4f}"),
        ("speedup", lambda r: f"{r['speedup']:.0f}x")]))

    result["layers"] = [row for net in networks for b in batches
                        for row in bench.per_layer(b, repeats, result["sgemm_gflops"], rng, net)]
    print("\n2. per layer (ms; conv GFLOP/s of forward+backward and share of sgemm)\n" + _table(result["layers"], [
        ("network", lambda r: r["network"]), ("batch", lambda r: str(r["batch"])), ("layer", lambda r: f"{r['index']} {r['layer']}"),
        ("forward", lambda r: f"{r['forward_ms']:.3f}"), ("backward", lambda r: f"{r['backward_ms']:.3f}"),
        ("GFLOP/s", lambda r: f"{r['gflops_total']:.1f}" if "gflops_total" in r else ""),
        ("of sgemm", lambda r: f"{100 * r['share_of_sgemm']:.0f}%" if "share_of_sgemm" in r else "")]))

    have_torch = bench.torch_available()
    use_torch = args.torch and have_torch
    result["new_layers"] = [row for b in batches for row in bench.new_layers(b, repeats, rng, use_torch, args.threads)]
    print("\n2b. layers beyond REF-CNN, training mode (ms; channels-last images; minicnn/torch for forward+backward)\n"
          + _table(result["new_layers"], [
              ("batch", lambda r: str(r["batch"])), ("layer", lambda r: r["layer"]),
              ("input", lambda r: "x".join(map(str, r["input"]))),
              ("forward", lambda r: f"{r['forward_ms']:.3f}"), ("backward", lambda r: f"{r['backward_ms']:.3f}"),
              ("torch fwd", lambda r: f"{r['torch_forward_ms']:.3f}" if "ratio" in r else ""),
              ("torch bwd", lambda r: f"{r['torch_backward_ms']:.3f}" if "ratio" in r else ""),
              ("minicnn/torch", lambda r: f"{r['ratio']:.2f}x" if "ratio" in r else "")]))

    result["training"] = [bench.training_throughput(b, repeats, rng, net) for net in networks for b in batches]
    if args.epoch and not quick:
        result["epoch"] = bench.real_epoch(64, 60000, rng)
    print("\n3. training (forward, backward, SGD step)\n" + _table(result["training"], [
        ("network", lambda r: r["network"]), ("batch", lambda r: str(r["batch"])), ("ms/step", lambda r: f"{r['step_ms']:.2f}"),
        ("images/s", lambda r: f"{r['images_per_s']:.0f}"), ("s per 60k epoch (from steps)", lambda r: f"{r['epoch_s_estimated']:.1f}")]))
    if "epoch" in result:
        print(f"one real REF-CNN epoch (train_epoch, batch 64, 60,000 images): {result['epoch']['seconds']:.1f} s")

    steps = 5 if quick else args.memory_steps
    images = 1000 if quick else 60000
    result["peak_rss_mb"] = {fw: _worker("memory", fw, batches[0], steps, args.threads, images, threads=args.threads)
                             for fw in (["minicnn", "torch"] if use_torch else ["minicnn"])}
    print(f"\n4. peak RSS training REF-CNN on {images:,} in-memory images, batch {batches[0]}, {steps} steps: " + ", ".join(
        f"{fw} {r['peak_rss_mb']:.0f} MB (with data, before training: {r['rss_with_data_mb']:.0f} MB)"
        for fw, r in result["peak_rss_mb"].items()))

    result["torch"] = {"available": have_torch, "requested": args.torch}
    if use_torch:
        result["torch"]["runs"] = [bench.compare_with_torch(b, 5 if quick else max(repeats, 40), args.threads, rng, net)
                                   for net in networks for b in batches]
        print(f"\n5. against PyTorch {result['versions']['torch']}, {args.threads} threads, steps alternated\n" + _table(
            result["torch"]["runs"], [
                ("network", lambda r: r["network"]), ("batch", lambda r: str(r["batch"])),
                ("logits max diff", lambda r: f"{r['logits_max_abs_diff']:.1e}"),
                ("grads rel diff", lambda r: f"{r['grads_max_rel_diff']:.1e}"),
                ("running stats rel diff", lambda r: f"{r['running_stats_max_rel_diff']:.1e}" if r["buffers_compared"] else "none"),
                ("minicnn ms", lambda r: f"{r['minicnn_step_ms']:.2f}"), ("torch ms", lambda r: f"{r['torch_step_ms']:.2f}"),
                ("minicnn/torch (median of pairs)", lambda r: f"{r['ratio_median_of_pairs']:.2f}x"),
                ("fastest/fastest", lambda r: f"{r['ratio_of_fastest']:.2f}x")]))
        result["torch"]["alone"] = [_alone(net, b, 5 if quick else max(repeats, 40), 1 if quick else args.rounds, args.threads,
                                           args.engine)
                                    for net in networks for b in batches]
        print("\n   each framework alone in its own process (processes alternated; two thread pools in one process\n"
              "   slow each other down when they spin)\n" + _table(result["torch"]["alone"], _spread_columns(("minicnn", "torch"))))
        disagree = [f"{r['network']} batch {r['batch']}" for r in result["torch"]["runs"]
                    if not (r["logits_match"] and r["grads_match"] and r["running_stats_match"])]
        if disagree:
            print("WARNING: minicnn and PyTorch disagree (logits >= 1e-4, gradients >= 1e-3 or running statistics >= 1e-4 "
                  "relative) on " + ", ".join(disagree))
    elif args.torch:
        print("\n5. PyTorch is not installed: skipped.  Get it with `pip install torch==2.13.0` (CPU build).")
    else:
        print("\n5. PyTorch comparison skipped: add --torch (PyTorch itself: `pip install torch==2.13.0`, CPU build).")
    result["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    path = Path(args.json) if args.json else Path(args.out) / "benchmark.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
