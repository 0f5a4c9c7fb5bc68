"""Enabled alerts that the spec's thresholds and exporters leave unable to ever fire."""

from __future__ import annotations

from gpuobs.alerts import ALERTS, BY_NAME, is_enabled
from gpuobs.catalog import DCGM_EXPORTER, Profile, dcgm_counters, exporter_profile
from gpuobs.errors import Problem
from gpuobs.gpus import GpuModel
from gpuobs.health import COMPONENTS, floor, lowerable
from gpuobs.spec.gpu_models import known_models
from gpuobs.spec.schema import Exporter, Fleet
from gpuobs.thresholds import resolved_thresholds

HEALTH_ALERT = "GPUHealthLow"


def check_alerts(fleet: Fleet) -> list[Problem]:
    """Run on a spec without other problems: it reads every host's exporter and GPU model."""
    if not is_enabled(BY_NAME[HEALTH_ALERT], fleet):
        return []
    return _health_floors(fleet)


def _health_floors(fleet: Fleet) -> list[Problem]:
    """GPUHealthLow fires below health_score_warning, and a GPU's health score never falls below
    the share of its components its exporter serves no series for: one problem per GPU model and
    exporter setup whose threshold is at or below that floor."""
    enabled = [d for d in ALERTS if is_enabled(d, fleet)]
    models = known_models(fleet)
    cluster_exporter = {c.name: c.exporter for c in fleet.clusters}
    problems, seen = [], set()
    for i, host in enumerate(fleet.hosts):
        gpu = models[host.gpus.model]
        profile, setup = _served(host.exporter or cluster_exporter[host.cluster], enabled)
        threshold = resolved_thresholds(gpu, fleet.thresholds.get(gpu.key)).health_score_warning
        if threshold > floor(profile, gpu) or (gpu.key, setup, profile.served) in seen:
            continue
        seen.add((gpu.key, setup, profile.served))
        where = f"{setup} (hosts[{i}] {host.name} and any like it)"
        problems.append(Problem(_health_path(fleet, i, gpu), _health_message(gpu, where, profile, threshold)))
    return problems


def _served(exporter: Exporter, enabled) -> tuple[Profile, str]:
    """What the exporter serves, and how to name it."""
    if exporter.kind != DCGM_EXPORTER:
        return exporter_profile(exporter.kind, None, ()), exporter.kind
    version = exporter.version or 4
    name, fields = dcgm_counters(exporter.counters, version, enabled)
    return exporter_profile(exporter.kind, version, fields), f"{exporter.kind} {version}.x with {name} counters"


def _health_path(fleet: Fleet, index: int, gpu: GpuModel) -> str:
    """The threshold where the spec sets it, else the exporter of the host."""
    override = fleet.thresholds.get(gpu.key)
    if override is not None and override.health_score_warning is not None:
        return f"thresholds.{gpu.key}.health_score_warning"
    host = fleet.hosts[index]
    if host.exporter is not None:
        return f"hosts[{index}].exporter"
    return f"clusters[{[c.name for c in fleet.clusters].index(host.cluster)}].exporter"


def _health_message(gpu: GpuModel, setup: str, profile: Profile, threshold: float) -> str:
    lowest = floor(profile, gpu)
    stuck = [c for c in COMPONENTS if c not in lowerable(profile, gpu)]
    return (f"{HEALTH_ALERT} could never fire for {gpu.key} GPUs on {setup}: it fires below "
            f"health_score_warning {threshold:g}, but their exporter serves no series for the {_listed(stuck)} "
            f"component{'s' * (len(stuck) > 1)} of the health score (a component without series counts as "
            f"healthy), so their score is never below {lowest:g}; set health_score_warning above {lowest:g}, have "
            f"the exporter serve those series, or disable {HEALTH_ALERT}")


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
