"""``python experiments/train_mnist.py`` is ``minicnn train``: the code is minicnn/experiments/train_mnist.py."""
import os
import sys

if __name__ == "__main__":   # before NumPy loads, which the command cannot do (see its one_blas_thread)
    BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    if not any(v in os.environ for v in BLAS):
        os.environ.update(dict.fromkeys(BLAS, "1"))
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # with more threads, idle BLAS threads sleep at once

from minicnn.experiments.train_mnist import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
