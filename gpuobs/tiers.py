"""Rule tiers: how often each kind of rule group runs, from the spec's evaluation interval alone
(the rules generator and the spec checks both read it).

A group's cost is the series it reads per evaluation, so what moves slower than a scrape runs
less often: derived per-GPU series, aggregates and the alerts that wait minutes anyway every SLOW
evaluations; the inventory, health, hour-long trends and the efficiency rules every STATIC
evaluations. What follows configuration runs every CONFIGURATION evaluations: per-GPU thresholds
(the spec's figures and the limits a GPU reports, which change when an operator sets them) and
blind spots (which series an exporter serves changes with a deployment, never with a fault, and
GPUAlertBlind waits ten minutes anyway). Each (evaluations, cap in seconds) stays inside
Prometheus' 5-minute lookback, so a recorded series never goes stale between two evaluations.
"""

from __future__ import annotations

import math

from gpuobs.promql import seconds

SLOW = (4, 60)
STATIC = (8, 120)
CONFIGURATION = (16, 240)
# An alert runs in the slow tier when its `for` is at least this many slow intervals (so the tier
# adds at most a quarter to it), or it waits for an operator anyway, and it is not critical:
# critical alerts reach the pager within `for` + 2 scrapes + 1 evaluation + group_wait.
SLOW_ALERT_INTERVALS = 4


def tier_seconds(evaluation_interval: str, tier: tuple[int, int]) -> int:
    evaluations, cap = tier
    every = seconds(evaluation_interval)
    return math.ceil(max(every, min(every * evaluations, cap)))
