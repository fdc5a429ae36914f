"""Checks shared by the layers: each raises ValueError saying what was expected and what came."""
import math
import numbers

import numpy as np


def pair(value, name, minimum):
    """An int or a pair of ints -> a pair of ints, each >= minimum."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_float_input(layer, x, ndim, layout):
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{layer} expected a NumPy array of shape {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{layer} expected input of shape {layout} ({ndim} dimensions), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{layer} expected a floating-point input, got dtype {x.dtype}; "
                         f"convert with x.astype(np.float32)")


def float_dtype(dtype, name="dtype"):
    """A floating NumPy dtype (float16/32/64); integer or other dtypes would train to nothing."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name} must be a floating NumPy dtype such as np.float32, got {dtype!r}") from None
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"{name} must be a floating NumPy dtype such as np.float32 or np.float64, got {dt}")
    return dt


def real_number(value, name, minimum=None, strict=False):
    """A finite real number (int, float or NumPy scalar; not bool) as a float, optionally >= / > ``minimum``."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


def integer(value, name, minimum=None):
    """An int or NumPy integer (not bool) as an int, optionally >= ``minimum``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        want = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return int(value)


def check_rng(rng, name="rng", allow_none=True):
    """The generator to draw from: ``rng`` itself, or (``allow_none``) a fresh unseeded one for None; anything else is refused."""
    if rng is None and allow_none:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng
