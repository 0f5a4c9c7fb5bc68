"""What each exporter setup lets the enabled alerts see: the blind spots `gpuobs validate` names
before anything is deployed (GPUAlertBlind names the same ones, and runtime ones, per GPU)."""

from __future__ import annotations

from gpuobs.model import ExporterSetup, FleetModel
from gpuobs.series import applicable, names_of


def unserved(model: FleetModel) -> list[tuple[ExporterSetup, list[tuple[str, tuple[str, ...]]]]]:
    """(setup, [(alert, metric names it would need), ...]) for every exporter setup: the alerts
    enabled in the spec that it serves no input of, for GPU models the alert concerns. An alert
    with fallbacks is not blind where it is not served: they cover its GPUs."""
    out = []
    for n in names_of(model):
        missing = []
        for alert in model.alerts:
            if not applicable(n, alert.definition) or alert.definition.fallbacks:
                continue
            for signal in alert.definition.needs:
                if not any(n.serves(k) for k in signal):
                    missing.append((alert.name, n.missing_names(signal)))
        out.append((n.exporter, missing))
    return out


def _setup(model: FleetModel, e: ExporterSetup) -> str:
    hosts = model.hosts_of(e)
    counters = f", counters {e.counters_name}" if e.counters_name else ""
    return f"{e.kind} (scrape job {e.job}{counters}; {len(hosts)} host{'s' * (len(hosts) != 1)})"


def report(model: FleetModel) -> list[str]:
    lines = []
    for e, missing in unserved(model):
        setup = _setup(model, e)
        if not missing:
            lines.append(f"{setup}: every enabled alert can see its GPUs")
            continue
        lines.append(f"{setup}: {len(missing)} enabled alert(s) blind, GPUAlertBlind will fire for each cluster of it:")
        lines += [f"  {alert}: needs {' or '.join(names)}" for alert, names in missing]
    return lines
