"""``python experiments/train_mnist.py`` is ``minicnn train``: the code is minicnn/experiments/train_mnist.py."""
import sys

from minicnn.experiments.train_mnist import main

if __name__ == "__main__":
    sys.exit(main())
