"""The argument checks of every stage: each raises a ValueError that names the argument,
the rule and the value: ``check_int(0, "depth")``: "depth must be an integer >= 1; got 0"."""

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
    """``value`` as a float if a finite real (not a bool) within the bounds (``open_*``: open)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    if not (ok and (high is None or (value < high if open_high else value <= high))):
        bounds = ([f"{'>' if open_low else '>='} {low}"] if low is not None else []) + (
            [f"{'<' if open_high else '<='} {high}"] if high is not None else [])
        fail(argument, " ".join(["a finite number", " and ".join(bounds)]).strip(), value)
    return float(value)


def check_bool(value, argument):
    """``value`` if it is True or False."""
    return value if isinstance(value, bool) else fail(argument, "True or False", value)


def check_choice(value, choices, argument):
    """``value`` if it is one of ``choices``."""
    return value if value in choices else fail(
        argument, "one of " + ", ".join(repr(c) for c in choices), value)


def check_array(value, argument):
    """``value`` as a non-empty numeric (or bool) array without NaN."""
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
