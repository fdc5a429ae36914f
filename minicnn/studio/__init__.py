"""``python -m minicnn studio``: a local page where you draw, step through a convolution and watch kernels learn.

``api`` holds the endpoints as plain functions (a dict in, a dict out) over the
analysis and edges code, ``server`` serves them and the static page with the
standard library's ``http.server``, ``guard`` decides who may use them (this
machine's names, the start's token, the page's own origin), ``trainer`` trains a small network a few
steps at a time, and ``static/`` is the page: HTML, CSS and JavaScript that
only draw what the endpoints computed.

May import: ``minicnn.analysis``, ``minicnn.edges``, ``minicnn.training``, ``minicnn.nn``, ``minicnn.data`` and
``minicnn.utils`` (the top layer: nothing in minicnn imports it but the command line).
"""
