"""The speed engine: what makes the layers of ``minicnn.nn`` fast, kept apart from their math.

Channels-last memory, BLAS called directly, reused buffers, the fast convolution,
pooling, element-wise passes and optimizer update. Each fast function's docstring
names the textbook code in ``minicnn.nn`` it replaces; the tests prove the two agree.
May import: NumPy and SciPy only (never ``minicnn.nn``, training or data code).
"""
