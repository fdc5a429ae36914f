"""Checkpoints as a hostile or clumsy user makes them: written by minicnn's own writer, then edited, with the
digest recomputed (it is a plain SHA-256 anyone can recompute), so that only the reader's other checks stand."""
import json
import zipfile

import numpy as np

from minicnn.training import architectures
from minicnn.training.checkpoint import _digest, save_checkpoint

TINY_SPEC = [{"type": "Conv2D", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same"},
             {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Dense", "in_features": 2 * 16 * 16, "out_features": 4}]


def tiny_checkpoint(path, spec=TINY_SPEC, seed=0, **kwargs):
    """A real checkpoint of a small network (16x16 inputs, 4 classes by default) saved by ``save_checkpoint``."""
    model = architectures.build_model(spec, rng=np.random.default_rng(seed))
    return save_checkpoint(path, model=model, **kwargs)


def read_entries(path):
    """Every entry of an .npz we wrote ourselves (trusted: no pickles), by name."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rewrite(path, entries):
    """Write ``entries`` back as a checkpoint, with ``minicnn/digest`` recomputed over them."""
    entries = {k: v for k, v in entries.items() if k != "minicnn/digest"}
    entries["minicnn/digest"] = np.array(_digest(entries))
    np.savez(path, **entries)
    return path


def edit(path, **changes):
    """Change entries of a checkpoint (``None`` deletes one; use ``replace`` for names with a slash)."""
    return replace(path, changes)


def replace(path, changes):
    entries = read_entries(path)
    for key, value in changes.items():
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value
    return rewrite(path, entries)


def with_architecture(path, spec):
    """The checkpoint at ``path`` claiming to hold the network ``spec`` (its weights unchanged)."""
    return replace(path, {"minicnn/architecture": np.array(json.dumps(spec, sort_keys=True, separators=(",", ":")))})


def huge_dense(path):
    """The issue's case: a ~1.6 MB file whose architecture declares Dense(30000, 30000) (3.6 GB of float32).

    The file holds a real Dense(400, 1000) (1.6 MB of weights that do not compress); its JSON claims 30000x30000.
    """
    spec = [{"type": "Dense", "in_features": 400, "out_features": 1000}]
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    save_checkpoint(path, model=model)
    return with_architecture(path, [{"type": "Dense", "in_features": 30000, "out_features": 30000}])


def zeros_bomb(path, megabytes=600):
    """A small .npz whose member inflates to ``megabytes`` MB of zeros, with only a minicnn/format entry."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("minicnn/format.npy", "w") as f:
            np.lib.format.write_array(f, np.array("minicnn-checkpoint"))
        with z.open("model/0.W.npy", "w", force_zip64=True) as f:
            n = megabytes * (1 << 20) // 4
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
            block = bytes(1 << 20)
            for _ in range(megabytes):
                f.write(block)
    return path


# Runs a command line in the child and, at exit, writes its peak resident memory (VmHWM, in kB) to $PEAK_FILE.
# VmHWM belongs to the address space exec made, so unlike ru_maxrss it does not count the forked parent's pages.
_MEASURED = """
import atexit, os, runpy, sys
def report():
    with open('/proc/self/status') as f:
        peak = next(line.split()[1] for line in f if line.startswith('VmHWM'))
    with open(os.environ['PEAK_FILE'], 'w') as f:
        f.write(peak)
atexit.register(report)
argv = sys.argv[1:]
if argv[0] == '-m':
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name='__main__', alter_sys=True)
else:
    sys.argv = argv
    runpy.run_path(argv[0], run_name='__main__')
"""


def run_measured(argv, cwd, limit_bytes=2 << 30, timeout=120):
    """Run ``argv`` (a Python command line: ``-m module ...`` or ``script ...``) in a child capped at
    ``limit_bytes`` of address space.

    Returns ``(exit code, stdout, stderr, peak resident memory in MB)``, the peak as the child saw it
    (``VmHWM``).  Under the cap, a tool that tries to allocate what a crafted file declares fails at
    once with a MemoryError (exit 1) instead of taking the machine's memory.
    """
    import os
    import resource
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**os.environ, "PYTHONPATH": str(repo), "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
               "PEAK_FILE": str(peak_file)}
        done = subprocess.run([sys.executable, "-c", _MEASURED, *map(str, argv)], stdin=subprocess.DEVNULL,
                              capture_output=True, cwd=cwd, env=env, preexec_fn=cap, timeout=timeout)
        peak_mb = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return done.returncode, done.stdout.decode(), done.stderr.decode(), peak_mb
