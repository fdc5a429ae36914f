"""The fast implementation: the operations of ``minicnn.nn.textbook``, with the same signatures, made fast.

Channels-last memory, BLAS called directly, one pool of reused buffers, the fast
convolution, pooling, batch norm, element-wise passes and optimizer updates.
Each fast function's docstring names the textbook function it replaces; the
tests prove the two agree.  ``minicnn.nn.ops`` is the one place that calls in here.
May import: NumPy and SciPy only (never ``minicnn.nn``, training or data code).
"""
