"""Checks of the efficiency section against the rest of the spec: prices name GPU models and
clusters the fleet has; the idle-allocation alert waits long enough for its recording."""

from __future__ import annotations

from gpuobs.alerts.efficiency import NAME as IDLE_ALERT
from gpuobs.errors import Problem
from gpuobs.promql import seconds
from gpuobs.spec.gpu_models import known_models
from gpuobs.spec.schema import Fleet, unknown_model_message
from gpuobs.tiers import STATIC, tier_seconds

# The alert's `for` spans at least this many evaluations of the rule recording what it reads.
IDLE_FOR_RECORDINGS = 2


def check_efficiency(fleet: Fleet) -> list[Problem]:
    e = fleet.efficiency
    if e is None:
        return []
    problems: list[Problem] = []
    models = known_models(fleet)
    used = {h.gpus.model for h in fleet.hosts}
    for model in e.gpu_hour_price:
        path = f"efficiency.gpu_hour_price.{model}"
        if model not in models:
            problems.append(Problem(path, unknown_model_message(model, models)))
        elif model not in used:
            problems.append(Problem(path, f"no host has {model} GPUs; a price for it would never apply"))
    clusters = [c.name for c in fleet.clusters]
    for name in e.clusters:
        if name not in clusters:
            problems.append(Problem(f"efficiency.clusters.{name}",
                                    f"unknown cluster '{name}'; known: {', '.join(clusters)}"))
    return problems + _idle_for(fleet)


def _idle_for(fleet: Fleet) -> list[Problem]:
    """The efficiency rules record whether an allocation is idle once per static tier interval (120 s
    at most): a shorter `for` would call a GPU idle on one or two glimpses of it. A `for` the spec's
    `alerts:` gives the alert takes its place, as any alert's override, unchecked."""
    override = fleet.alerts.get(IDLE_ALERT)
    if override is not None and (override.enabled is False or override.for_):
        return []
    duration = fleet.efficiency.idle.for_
    every = tier_seconds(fleet.prometheus.evaluation_interval, STATIC)
    least = IDLE_FOR_RECORDINGS * every
    if seconds(duration) >= least:
        return []
    return [Problem("efficiency.idle.for", f"{duration} is shorter than {IDLE_FOR_RECORDINGS} evaluations of the "
                    f"efficiency rules ({every}s apart at evaluation_interval {fleet.prometheus.evaluation_interval}), "
                    f"which record whether a GPU is idle; {IDLE_ALERT} would call it idle on one glimpse. Set at "
                    f"least {least}s")]
