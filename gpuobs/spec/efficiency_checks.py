"""Checks of the efficiency section against the rest of the spec: prices name GPU models and
clusters the fleet has."""

from __future__ import annotations

from gpuobs.errors import Problem
from gpuobs.spec.gpu_models import known_models
from gpuobs.spec.schema import Fleet, unknown_model_message


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
    return problems
