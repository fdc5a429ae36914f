"""``python -m minicnn.gradcheck``: the gradient-check table of every layer, on both engines.

The checker itself lives in ``minicnn.nn.gradcheck``.
"""
import sys

from minicnn.nn.gradcheck import main

if __name__ == "__main__":
    sys.exit(main())
