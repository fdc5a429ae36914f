"""``python -m minicnn.gradcheck``: the gradient-check table of every layer, on every implementation (loops, textbook, fast).

The checker itself lives in ``minicnn.nn.gradcheck``.
"""
import sys

from minicnn.nn.gradcheck import main
from minicnn.utils.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command(main))
