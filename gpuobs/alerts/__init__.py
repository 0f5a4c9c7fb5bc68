"""The alert catalog: every alert as one object (base.AlertDef) holding its expression, `for`,
labels, annotations, promtool cases, dashboard panel, runbook anchor and the simulator fault
that proves it end to end. One module per family defines its alerts; this one lists them in the
order the generated files show them.

To add an alert, define it in its family's module (or a new one listed here) and give it a
section in docs/runbooks.md; the generators and tests read it from here.
"""

from __future__ import annotations

from gpuobs.alerts import (
    coverage,
    ecc,
    efficiency,
    exporter,
    health,
    interconnect,
    inventory,
    memory,
    memory_repair,
    power,
    recovery,
    thermal,
    throttle,
    xid,
)
from gpuobs.alerts.base import ACTIONS, SEVERITIES, AlertDef, Proof, Rule, is_enabled, render_annotation
from gpuobs.alerts.coverage import BLIND_ALERT

ALERTS: tuple[AlertDef, ...] = (
    *thermal.ALERTS, *power.ALERTS, *ecc.ALERTS, *throttle.ALERTS, *memory.ALERTS, *xid.ALERTS, *recovery.ALERTS,
    *memory_repair.ALERTS, *interconnect.ALERTS, *health.ALERTS, *inventory.ALERTS, *exporter.ALERTS,
    *efficiency.ALERTS, *coverage.ALERTS,
)

BY_NAME: dict[str, AlertDef] = {a.name: a for a in ALERTS}

__all__ = ["ACTIONS", "ALERTS", "BLIND_ALERT", "BY_NAME", "SEVERITIES", "AlertDef", "Proof", "Rule", "is_enabled",
           "render_annotation"]
