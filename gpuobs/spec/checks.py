"""Checks that span sections of a spec: references, duplicates, MIG layouts, threshold order."""

from __future__ import annotations

import difflib
from collections import Counter

from gpuobs.alerts import BY_NAME as ALERTS_BY_NAME
from gpuobs.catalog import (
    DCGM_EXPORTER,
    DCGM_FIELD_KEYS,
    DCGM_LABELS,
    DCGM_NAMES,
    DEFAULT_PORTS,
    NVIDIA_SMI_LABELS,
    OLD_CLOCK_EVENTS_FIELD,
    WORKLOAD_LABELS,
)
from gpuobs.dcgm_fields import DCGM_FIELDS
from gpuobs.errors import Problem, shown
from gpuobs.promql import seconds
from gpuobs.spec.alert_checks import check_alerts
from gpuobs.spec.efficiency_checks import check_efficiency
from gpuobs.spec.gpu_models import check_gpu_models, known_models
from gpuobs.spec.grafana_checks import check_grafana
from gpuobs.spec.kubernetes_checks import check_kubernetes
from gpuobs.spec.own_rule_checks import check_own_rules, check_recorded_names
from gpuobs.spec.routing_checks import check_alertmanager
from gpuobs.spec.schema import NAME, Exporter, Fleet, unknown_model_message
from gpuobs.spec.tier_checks import check_tiers
from gpuobs.thresholds import resolved_thresholds

# Labels gpuobs itself sets on series or alerts; a user label of the same name would clobber them.
_ALERT_OWNED = ("alertname", "severity", "action", "family", "cluster", "team", "job", "instance", "gpu_model",
                "blind_alert", "missing", "held_by")
CLOCK_EVENTS_FIELD = DCGM_NAMES["clock_event_reasons"]
# Labels some exporter puts on GPU series.
EXPORTER_LABELS = (frozenset(DCGM_LABELS.values()) | {"Hostname"} | set(NVIDIA_SMI_LABELS.values())
                   | set(WORKLOAD_LABELS))


def reserved_labels(fleet: Fleet) -> set[str]:
    return set(_ALERT_OWNED) | {fleet.prometheus.host_label} | EXPORTER_LABELS


def cross_check(fleet: Fleet, fleet_name: str) -> list[Problem]:
    problems: list[Problem] = []
    add = lambda path, message: problems.append(Problem(path, message))  # noqa: E731
    reserved = reserved_labels(fleet)
    if fleet.name is None and not NAME.fullmatch(fleet_name):
        add("name", f"the fleet takes its name from the file's, {shown(fleet_name)}, which is not a valid name "
            "(lower-case letters, digits, '.', '_' and '-'); set name: in the spec")

    clusters = [c.name for c in fleet.clusters]
    for i, name in _duplicates(clusters):
        add(f"clusters[{i}].name", f"duplicate cluster name '{name}'")
    for i, cluster in enumerate(fleet.clusters):
        _check_labels(add, f"clusters[{i}].labels", cluster.labels, reserved)

    models = known_models(fleet)
    problems += check_gpu_models(fleet)
    for i, cluster in enumerate(fleet.clusters):
        _check_exporter(add, f"clusters[{i}].exporter", cluster.exporter)

    hosts = [h.name for h in fleet.hosts]
    for i, name in _duplicates(hosts):
        add(f"hosts[{i}].name", f"duplicate host name '{name}'")
    cluster_exporter = {c.name: c.exporter for c in fleet.clusters}
    ports = [h.exporter_port or DEFAULT_PORTS[(h.exporter or cluster_exporter.get(h.cluster) or Exporter()).kind]
             for h in fleet.hosts]
    endpoints = [f"{(h.address or h.name).lower()}:{port}" for h, port in zip(fleet.hosts, ports, strict=True)]
    for i, endpoint in _duplicates(endpoints):
        add(f"hosts[{i}].exporter_port", f"exporter endpoint {endpoint} is already used by another host")
    for i, (host, port) in enumerate(zip(fleet.hosts, ports, strict=True)):
        if port == host.node_exporter_port:
            add(f"hosts[{i}].exporter_port", f"port {port} is also the host's node_exporter_port")
        if host.cluster not in clusters:
            add(f"hosts[{i}].cluster", f"unknown cluster '{host.cluster}'; known: {', '.join(clusters)}")
        if host.exporter is not None:
            _check_exporter(add, f"hosts[{i}].exporter", host.exporter)
        _check_labels(add, f"hosts[{i}].labels", host.labels, reserved)
        if host.gpus.model not in models:
            add(f"hosts[{i}].gpus.model", unknown_model_message(host.gpus.model, models))
        elif host.gpus.mig is not None:
            _check_mig(add, f"hosts[{i}].gpus", host.gpus, models[host.gpus.model])

    owner: dict[str, str] = {}
    for i, team_name in _duplicates([t.name for t in fleet.teams]):
        add(f"teams[{i}].name", f"duplicate team name '{team_name}'")
    for i, team in enumerate(fleet.teams):
        if not team.clusters and not team.hosts:
            add(f"teams[{i}]", "a team must own at least one cluster or host")
        for j, cluster in enumerate(team.clusters):
            if cluster not in clusters:
                add(f"teams[{i}].clusters[{j}]", f"unknown cluster '{cluster}'; known: {', '.join(clusters)}")
        for j, host in enumerate(team.hosts):
            if host not in hosts:
                add(f"teams[{i}].hosts[{j}]", f"unknown host '{host}'")
        owned = [h.name for h in fleet.hosts if h.cluster in team.clusters] + list(team.hosts)
        for host in owned:
            if owner.get(host, team.name) != team.name:
                add(f"teams[{i}]", f"host '{host}' is already owned by team '{owner[host]}'; a host has one owner")
            owner[host] = team.name

    used_models = {h.gpus.model for h in fleet.hosts}
    for model, override in fleet.thresholds.items():
        if model not in models:
            add(f"thresholds.{model}", unknown_model_message(model, models))
            continue
        if model not in used_models:
            add(f"thresholds.{model}", f"no host has {model} GPUs; thresholds for it would never apply")
        # Compare what will be in force: the spec's values over the model's defaults.
        t = resolved_thresholds(models[model], override)
        path = f"thresholds.{model}"
        _check_order(add, path, override, t, "gpu_temp_warning", "gpu_temp_critical", "below")
        _check_order(add, path, override, t, "power_warning_ratio", "power_critical_ratio", "below")
        _check_order(add, path, override, t, "gpu_temp_margin_warning", "gpu_temp_margin_critical",
                     "above (a margin shrinks as the GPU heats up)")

    for name, override in fleet.alerts.items():
        if name not in ALERTS_BY_NAME:
            add(f"alerts.{name}", f"unknown alert {shown(name)}; known: {', '.join(ALERTS_BY_NAME)}")
            continue
        if not ALERTS_BY_NAME[name].belongs_to(fleet):
            add(f"alerts.{name}", f"{name} comes with the {ALERTS_BY_NAME[name].section} section, which this spec "
                "does not have; add the section or leave the alert out")
            continue
        _check_labels(add, f"alerts.{name}.labels", override.labels, reserved)

    prom = fleet.prometheus
    if prom.host_label in set(_ALERT_OWNED) | EXPORTER_LABELS:
        add("prometheus.host_label", f"'{prom.host_label}' is a label gpuobs or the exporter sets already; "
            "choose another name (default: host)")
    if prom.scrape_timeout and seconds(prom.scrape_timeout) > seconds(prom.scrape_interval):
        add("prometheus.scrape_timeout", f"{prom.scrape_timeout} is longer than scrape_interval "
            f"{prom.scrape_interval}; Prometheus refuses that")
    if seconds(prom.exporter_stale_after) < seconds(prom.scrape_interval):
        add("prometheus.exporter_stale_after", f"{prom.exporter_stale_after} is shorter than scrape_interval "
            f"{prom.scrape_interval}; every exporter would count as stale between two scrapes")
    problems += (check_tiers(fleet) + check_alertmanager(fleet) + check_grafana(fleet, fleet_name)
                 + check_kubernetes(fleet, fleet_name) + check_efficiency(fleet)
                 + check_own_rules(fleet, reserved))
    # Whether alerts can fire is a question about a consistent spec: every host's model and exporter known.
    return problems or check_alerts(fleet) or check_recorded_names(fleet, fleet_name)


def _duplicates(names):
    seen = Counter()
    for i, name in enumerate(names):
        seen[name] += 1
        if seen[name] == 2:
            yield i, name


def _check_labels(add, path, labels, reserved):
    for key in labels:
        if key in reserved:
            add(f"{path}.{key}", f"label '{key}' is set by gpuobs itself; choose another name")


def _check_order(add, path, override, resolved, warning_key, critical_key, direction):
    """warning must come before critical; the message names whichever of the two the spec set."""
    warning, critical = getattr(resolved, warning_key), getattr(resolved, critical_key)
    if warning is None or critical is None:
        return
    wrong = warning >= critical if direction == "below" else warning <= critical
    if wrong:
        key = warning_key if getattr(override, warning_key) is not None else critical_key
        add(f"{path}.{key}", f"{warning_key} must be {direction} {critical_key} "
            f"(in force: {warning_key}={warning:g}, {critical_key}={critical:g})")


def _check_exporter(add, path, exporter: Exporter) -> None:
    dcgm = exporter.kind == DCGM_EXPORTER
    if exporter.version is not None and not dcgm:
        add(f"{path}.version", f"version applies to dcgm-exporter only, not {exporter.kind}")
    if exporter.counters is not None and not dcgm:
        add(f"{path}.counters", f"counters apply to dcgm-exporter only, not {exporter.kind}")
    if not isinstance(exporter.counters, list):
        return
    if not exporter.counters:
        add(f"{path}.counters", "an empty counters list would serve nothing; use default, gpuobs or field names")
    for j, name in enumerate(exporter.counters):
        if name not in DCGM_FIELDS and name not in DCGM_FIELD_KEYS:
            close = difflib.get_close_matches(name, sorted(DCGM_FIELDS), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            add(f"{path}.counters[{j}]", f"{shown(name)} is not a DCGM field dcgm-exporter knows{hint}")
        if name == CLOCK_EVENTS_FIELD and exporter.version == 3:
            add(f"{path}.counters[{j}]", f"dcgm-exporter 3.x exits on {name}; it knows the field as "
                f"{OLD_CLOCK_EVENTS_FIELD}")
    for j, name in _duplicates(exporter.counters):
        add(f"{path}.counters[{j}]", f"{shown(name)} is listed twice")


def _check_mig(add, path, gpus, model):
    if not model.mig_profiles:
        add(f"{path}.mig", f"{gpus.model} does not support MIG")
        return
    known = {p.name: p for p in model.mig_profiles}
    chosen = []
    for j, name in enumerate(gpus.mig.profiles):
        if name not in known:
            add(f"{path}.mig.profiles[{j}]", f"unknown MIG profile {shown(name)} for {gpus.model}; known: "
                f"{', '.join(known)}")
        else:
            chosen.append(known[name])
    compute = sum(p.compute_slices for p in chosen)
    memory = sum(p.memory_slices for p in chosen)
    if compute > model.compute_slices or memory > model.memory_slices:
        add(f"{path}.mig.profiles", f"layout needs {compute}/{model.compute_slices} compute and "
            f"{memory}/{model.memory_slices} memory slices; it does not fit on one GPU")
    for j, index in _duplicates(gpus.mig.gpus or []):
        add(f"{path}.mig.gpus[{j}]", f"GPU index {index} is listed twice")
    for j, index in enumerate(gpus.mig.gpus or []):
        if index >= gpus.count:
            add(f"{path}.mig.gpus[{j}]", f"GPU index {index} is out of range; the host has {gpus.count} GPUs "
                f"(0-{gpus.count - 1})")
