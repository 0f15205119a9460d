"""The argument checks of every stage: each raises a ValueError that names the argument,
the rule and the value given ("depth must be an integer >= 1; got 0").

Example:
    >>> check_number(0.5, "alpha", 0, 1)
    0.5
    >>> check_int(True, "depth")
    Traceback (most recent call last):
    ValueError: depth must be an integer >= 1; got True
"""

import math
import numbers

import numpy as np


def fail(argument, rule, value):
    """Raise ``ValueError("<argument> must be <rule>; got <value!r>")``."""
    raise ValueError(f"{argument} must be {rule}; got {value!r}")


def check_int(value, argument, minimum=1):
    """``value`` if it is an ``int`` (not a bool) >= ``minimum`` (None: any)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            minimum is not None and value < minimum):
        fail(argument, "an integer" + ("" if minimum is None else f" >= {minimum}"), value)
    return int(value)


def check_number(value, argument, low=None, high=None, *, open_low=False, open_high=False):
    """``value`` as a float if it is a finite real number (not a bool) within the bounds;
    ``open_low``/``open_high`` exclude the bound itself."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    ok = ok and (high is None or (value < high if open_high else value <= high))
    if not ok:
        bounds = ([f"{'>' if open_low else '>='} {low}"] if low is not None else []) + (
            [f"{'<' if open_high else '<='} {high}"] if high is not None else [])
        fail(argument, " ".join(["a finite number", " and ".join(bounds)]).strip(), value)
    return float(value)


def check_bool(value, argument):
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        fail(argument, "True or False", value)
    return value


def check_choice(value, choices, argument):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        fail(argument, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_array(value, argument):
    """``value`` as a non-empty numeric (or bool) array without NaN.

    Example:
        >>> check_array([0.5, float("nan")], "prediction")
        Traceback (most recent call last):
        ValueError: prediction contains 1 NaN value(s)
    """
    array = np.asarray(value)
    if array.dtype != bool and array.dtype.kind not in "iuf":
        raise ValueError(f"{argument} must be a numeric array; got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{argument} is empty (shape {array.shape})")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{argument} contains {int(np.isnan(array).sum())} NaN value(s)")
    return array


def count(items, noun):
    """``"3 masks"``, ``"1 mask"``: a count of ``items`` (a number or a sized thing)."""
    n = items if isinstance(items, numbers.Integral) else len(items)
    return f"{n} {noun}{'' if n == 1 else 's'}"
