"""``python experiments/learn_sobel.py`` is ``minicnn sobel``: the code is minicnn/experiments/learn_sobel.py."""
import sys

from minicnn.experiments.learn_sobel import main
from minicnn.utils.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command(main))
