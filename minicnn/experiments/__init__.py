"""The experiments of the README as commands, one module each (``main(argv)``, dispatched by ``minicnn/__main__.py``).

- ``train_mnist``: ``minicnn train``, the main job: the default CNN on MNIST or Fashion-MNIST, resumable,
  then its first-layer kernels beside the Sobel family;
- ``learn_sobel``: ``minicnn sobel``, one conv layer learns the two Sobel kernels from filtered images;
- ``edge_classifier``: ``minicnn edges``, edge detectors emerge in a small CNN that classifies edge directions.

The scripts of the same names in the source's ``experiments/`` folder only call these. They sit on top of
the package, beside the studio: they may import everything but the studio and export.
"""
