"""Type checks shared by the settings classes, which validate user input before anything runs.

``True`` is an ``int`` in Python and NaN is a ``float``: neither is an acceptable number of steps,
temperature or fraction, so these checks refuse both.
"""

from __future__ import annotations

import math


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value, minimum: int) -> bool:
    """An int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
