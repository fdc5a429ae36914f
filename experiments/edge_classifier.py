"""``python experiments/edge_classifier.py`` is ``minicnn edges``: the code is minicnn/experiments/edge_classifier.py."""
import sys

from minicnn.experiments.edge_classifier import main
from minicnn.utils.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command(main))
