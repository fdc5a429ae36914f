"""Write it yourself: exercises that check your own layer math, then train a network with it.

``minicnn exercises`` lists them, ``start`` writes a skeleton, ``check`` compares yours with the
library (``checks``), ``solution`` prints the textbook answer (``solutions``), and ``minicnn train --mine``
runs your passed functions in place of the library's (``adapters``).
"""
