"""What a trained network does inside: one module per view, each giving arrays and text, and PNGs with matplotlib.

``featuremaps`` (every convolution's output for one image), ``saliency`` (the
gradient of the predicted logit with respect to the pixels), ``curves`` (loss,
accuracy and learning rate per epoch), ``confusion`` (the test-set confusion
matrix and the most confident mistakes), ``images`` (reading and preparing
your own picture the way MNIST was made) and ``predict`` (the command that
classifies it); ``common`` loads a checkpoint's model and its test images.
Kernels over time live with the other kernel pictures in ``minicnn.edges``.

May import: ``minicnn.nn``, ``minicnn.data``, ``minicnn.training``, ``minicnn.edges`` and ``minicnn.utils``
(the top layer: nothing in minicnn imports it but the command line).
"""
