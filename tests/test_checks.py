"""keras_unet.checks: the exact message of each argument check."""

import re

import numpy as np
import pytest

from keras_unet import checks


@pytest.mark.parametrize("call, message", [
    (lambda: checks.fail("alpha", "a number", "x"), "alpha must be a number; got 'x'"),
    (lambda: checks.check_int(0, "depth"), "depth must be an integer >= 1; got 0"),
    (lambda: checks.check_int(True, "depth"), "depth must be an integer >= 1; got True"),
    (lambda: checks.check_int(2.0, "n", minimum=None), "n must be an integer; got 2.0"),
    (lambda: checks.check_int(1, "n_classes", 2), "n_classes must be an integer >= 2; got 1"),
    (lambda: checks.check_number("1", "rate"), "rate must be a finite number; got '1'"),
    (lambda: checks.check_number(float("nan"), "rate", 0),
     "rate must be a finite number >= 0; got nan"),
    (lambda: checks.check_number(1.5, "alpha", 0, 1), "alpha must be a finite number >= 0 and "
                                                      "<= 1; got 1.5"),
    (lambda: checks.check_number(0, "sigma", 0, open_low=True),
     "sigma must be a finite number > 0; got 0"),
    (lambda: checks.check_number(1, "p", high=1, open_high=True),
     "p must be a finite number < 1; got 1"),
    (lambda: checks.check_number(True, "p"), "p must be a finite number; got True"),
    (lambda: checks.check_bool(1, "augment"), "augment must be True or False; got 1"),
    (lambda: checks.check_choice("x", ("a", "b"), "mode"), "mode must be one of 'a', 'b'; got 'x'"),
    (lambda: checks.check_array(["a"], "mask"), "mask must be a numeric array; got dtype <U1"),
    (lambda: checks.check_array(np.zeros((0, 3)), "mask"), "mask is empty (shape (0, 3))"),
    (lambda: checks.check_array([0.5, np.nan, np.nan], "prediction"),
     "prediction contains 2 NaN value(s)"),
])
def test_messages(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call()


def test_passing_values_come_back():
    assert checks.check_int(np.int64(3), "n") == 3 and type(checks.check_int(3, "n")) is int
    assert checks.check_number(1, "alpha", 0, 1) == 1.0
    assert checks.check_bool(False, "augment") is False
    assert checks.check_choice("a", ("a", "b"), "mode") == "a"
    assert checks.check_array([True, False], "mask").dtype == bool
    assert checks.count(3, "mask") == "3 masks" and checks.count(["a"], "mask") == "1 mask"
