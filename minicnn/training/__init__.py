"""Training: the loop (fit, evaluate, predict), resumable runs with checkpoints and Ctrl-C, networks as JSON.

May import: ``minicnn.nn``, ``minicnn.data`` and ``minicnn.utils`` (never ``minicnn.edges``).
"""
