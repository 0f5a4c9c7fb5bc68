"""Numeric flags checked the same way by both programs: a NaN interval would busy-loop and an
infinite one stop the collector thread for good, so both are refused at start with a message."""

from __future__ import annotations

import math


def positive(text: str | float, flag: str, maximum: float = 86400.0, unit: str = "seconds") -> float:
    """A finite number above 0 and at most `maximum`; ValueError names the flag."""
    what = f"a number of {unit}" if unit else "a number"
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be {what}, not {str(text)!r}") from None
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise ValueError(f"{flag} must be {what} above 0 and at most {maximum:g}, not {str(text)!r}")
    return value
