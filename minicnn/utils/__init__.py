"""Small helpers every other part of minicnn may use: argument checks, files written safely, command-line plumbing.

May import: the standard library and NumPy only (nothing else from minicnn).
"""
