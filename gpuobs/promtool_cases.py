"""The pieces of a promtool test case, shared by the promtests generator and the alert catalog
(each alert writes its own cases from these and the generator's Builder).

Inputs are sampled every STEP seconds like a real scrape; counter inputs ramp linearly so
increase() is exact on Prometheus 2 and 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gpuobs.promql import num, quote, seconds

if TYPE_CHECKING:
    from gpuobs.model import Alert

STEP = 15  # seconds between samples and between rule evaluations
BASELINE = 60  # counters stay flat this long before a ramp starts


@dataclass
class Case:
    """One promtool test group: input series and the alerts expected at given times."""

    name: str
    series: list[tuple[str, dict, str]] = field(default_factory=list)  # metric, labels, values
    checks: list[tuple[int, str, list[tuple[dict, float]]]] = field(default_factory=list)

    def add(self, metric: str, labels: dict, values: str) -> Case:
        self.series.append((metric, labels, values))
        return self


def hold_of(alert: Alert) -> int:
    """`for` rounded up to the evaluation grid: promtool checks alerts only at evaluation steps."""
    return math.ceil(seconds(alert.for_) / STEP) * STEP


def flat(value: float, seconds: int) -> str:
    return f"{num(value)}x{seconds // STEP}"


def held(value: float | str, seconds: int) -> str:
    """A value held flat for `seconds`, or a series' values as given."""
    return value if isinstance(value, str) else flat(value, seconds)


def ramp_after_baseline(step: float, seconds: int) -> str:
    """0 for BASELINE seconds, then +step per sample until `seconds`."""
    return f"0x{BASELINE // STEP - 1} 0+{num(step)}x{(seconds - BASELINE) // STEP}"


def series_text(metric: str, labels: dict) -> str:
    return metric + "{" + ", ".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"
