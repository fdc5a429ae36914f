"""The edge-detection teaching tools: classic filters (Sobel, ...), the two edge experiments, explain, inspect, pictures.

May import: ``minicnn.nn``, ``minicnn.data``, ``minicnn.training`` and ``minicnn.utils``.
"""
