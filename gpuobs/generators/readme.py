"""README.md of a fleet's output: what is monitored, the thresholds and alerts in force and where
each alert goes, the rule groups and dashboards, what the exporters cannot see, and which file goes
where. Whoever is handed generated/<fleet>/ learns what it does without the spec or gpuobs' code.

Rows come from the model and from the other generators' own functions (rule files, routes,
dashboards, blind spots), so the README says what they write; templates/fleet_readme.md.j2 lays
them out.
"""

from __future__ import annotations

import functools
from dataclasses import fields

import jinja2

from gpuobs import coverage
from gpuobs.alerts import ALERTS, BLIND_ALERT
from gpuobs.alerts.coverage import blind_remedy
from gpuobs.catalog import DCGM_EXPORTER
from gpuobs.generators import alertmanager, dcgm_counters, grafana, kubernetes, prometheus, rules
from gpuobs.generators import own_rules as own_rules_generator
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num
from gpuobs.receivers import DISCARD_RECEIVER, RECEIVER_KINDS, secret_files
from gpuobs.render import header
from gpuobs.series import POWER_LIMIT_SOURCES, applicable, names_of
from gpuobs.thresholds import Thresholds, default_thresholds

PATH = "README.md"
# Where a GPU's temperature thresholds come from at run time, best first (rules.threshold_rules),
# before the model's figures: (logical metric, how the thresholds follow from it).
TEMPERATURE_SOURCES = (
    ("gpu_temp_margin", "T.Limit (temperature + margin) less `gpu_temp_margin_warning` / `gpu_temp_margin_critical`"),
    ("gpu_max_op_temp", "the max operating temperature, less `gpu_temp_max_op_offset_warning` for the warning"),
)
CONCERNS = {"nvlink": "GPUs with NVLink", "row_remapping": "GPUs that remap memory rows"}
# Spec text shown as it is: Markdown punctuation escaped, a `|` kept inside its table cell.
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_<>[]|"})


def generate(model: FleetModel) -> dict[str, str]:
    return {PATH: _template().render(context(model))}


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("gpuobs.generators", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(cell=lambda value: str(value).translate(_MARKDOWN), pairs=_pairs)
    return env.get_template("fleet_readme.md.j2")


def _pairs(pairs) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs).translate(_MARKDOWN)


def context(model: FleetModel) -> dict:
    groups = rule_groups(model)
    return {
        "header": header(model.source, "<!--", " -->"), "model": model,
        "gpus": sum(h.gpu_count for h in model.hosts), "clusters": clusters(model), "gpu_models": gpu_models(model),
        "mig": mig_layouts(model), "exporters": exporters(model),
        "thresholds": thresholds(model), "limit_sources": limit_sources(model),
        "alerts": alerts(model, groups), "turned_off": turned_off(model), "routing": routing(model),
        "own": own_rules(model),
        "groups": groups, "dashboards": dashboards(model),
        "blind_spots": blind_spots(model), "left_out": left_out(model),
        "servers": servers(model), "kubernetes": kubernetes_folders(model),
        "grafana": {"provisioning": grafana.PROVISIONING_FOLDER, "mount": grafana.DASHBOARDS_MOUNT,
                    "datasource": grafana.DATASOURCE_UID},
    }


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def clusters(model: FleetModel) -> list[dict]:
    servers = {s.cluster: s for s in model.servers}
    rows = []
    for cluster in model.clusters:
        hosts = [h for h in model.hosts if h.cluster == cluster]
        rows.append({"name": cluster, "hosts": len(hosts), "gpus": sum(h.gpu_count for h in hosts),
                     "models": _unique(h.gpu.key for h in hosts), "teams": _unique(h.team for h in hosts if h.team),
                     "server": servers.get(cluster)})
    return rows


def gpu_models(model: FleetModel) -> list[dict]:
    rows = []
    for gpu in model.gpu_models:
        hosts = [h for h in model.hosts if h.gpu is gpu]
        rows.append({"gpu": gpu, "hosts": len(hosts), "gpus": sum(h.gpu_count for h in hosts)})
    return rows


def mig_layouts(model: FleetModel) -> list[dict]:
    """One row per host and layout: which GPUs are partitioned into which instances."""
    rows = []
    for host in model.hosts:
        by_layout: dict[tuple[str, ...], list[int]] = {}
        for index, profiles in host.mig:
            by_layout.setdefault(profiles, []).append(index)
        rows += [{"host": host.name, "gpus": indices, "profiles": profiles} for profiles, indices in by_layout.items()]
    return rows


def exporters(model: FleetModel) -> list[dict]:
    return [{"setup": e, "hosts": len(model.hosts_of(e)), "clusters": _unique(h.cluster for h in model.hosts_of(e)),
             "models": [gpu.key for gpu in model.models_of(e)],
             "csv": dcgm_counters.csv_path(e) if e.kind == DCGM_EXPORTER else None}
            for e in model.exporters]


def _value(value) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else num(value)


def thresholds(model: FleetModel) -> list[dict]:
    """A row per threshold, a cell per GPU model: its value, and whether the spec set it (else it is
    the default: gpuobs' own, or the model's figure)."""
    defaults = [default_thresholds(gpu) for gpu in model.gpu_models]
    return [{"name": f.name, "cells": [
        {"value": _value(getattr(resolved, f.name)), "spec": getattr(resolved, f.name) != getattr(default, f.name)}
        for (_, resolved), default in zip(model.thresholds, defaults, strict=True)]}
        for f in fields(Thresholds)]


def limit_sources(model: FleetModel) -> list[dict]:
    """Per exporter setup, the series a GPU's own limits are read from at run time, best first."""
    rows = []
    for e in model.exporters:
        p = e.profile
        rows.append({
            "job": e.job, "temperature": p.serves("gpu_temp"), "power": p.serves("power_usage"),
            "temperature_sources": [(p.metric(key), how) for key, how in TEMPERATURE_SOURCES if p.serves(key)],
            "power_source": next((p.metric(key) for key in POWER_LIMIT_SOURCES if p.serves(key)), None),
        })
    return rows


def reaches(model: FleetModel, alert: Alert) -> list[tuple[str | None, list[str]]]:
    """(owning team, receivers) for each owner of the fleet's hosts (None: hosts without a team), as
    the routing tests expect them; one entry with no team when every owner's alert goes alike."""
    owners = _unique(h.team for h in model.hosts)
    found = [(team, alertmanager.expected_receivers(model, alert.severity, alert.definition.action, team))
             for team in owners]
    if len({tuple(receivers) for _, receivers in found}) == 1:
        return [(None, found[0][1])]
    return found


def alerts(model: FleetModel, groups: list[dict]) -> list[dict]:
    placed = {name: group for group in groups for name in group["alerts"]}
    return [{"alert": a, "group": placed.get(a.name), "labels": a.labels,
             "reaches": reaches(model, a) if model.alertmanager else None} for a in model.alerts]


def own_rules(model: FleetModel) -> dict:
    """The spec's own alerts, with where each goes as the routing tests expect it, and recording rules."""
    own = model.own_rules

    def reaches(alert) -> list[tuple[str | None, list[str]]] | None:
        if model.alertmanager is None:
            return None
        owners = [alert.team] if alert.team else _unique(h.team for h in model.hosts)
        found = [(team, alertmanager.expected_receivers(model, alert.severity, alert.action, team)) for team in owners]
        return [(None, found[0][1])] if len({tuple(r) for _, r in found}) == 1 else found

    return {"alerts": [{"alert": a, "reaches": reaches(a)} for a in own.alerts], "recording": own.recording,
            "rules": own_rules_generator.RULES, "tests": own_rules_generator.TESTS, "group": own_rules_generator.GROUP}


def turned_off(model: FleetModel) -> list[dict]:
    """Catalog alerts the fleet does not run: off by default, or turned off in the spec (not those of
    a section the spec lacks: the fleet has no such alert)."""
    enabled = {a.name for a in model.alerts}
    return [{"name": d.name, "by_spec": d.on_by_default} for d in ALERTS
            if d.name not in enabled and d.belongs_to(model)]


def routing(model: FleetModel) -> dict | None:
    am = model.alertmanager
    if am is None:
        return None
    return {
        "settings": am.routing, "group_by": alertmanager.group_by(model), "discard": DISCARD_RECEIVER,
        "default": am.routing.default_receiver or DISCARD_RECEIVER,
        "receivers": [{"name": r.name, "integration": next(kind for kind in RECEIVER_KINDS if getattr(r, kind)),
                       "send_resolved": r.send_resolved} for r in am.receivers],
        "inhibit_rules": am.inhibit_rules,
        "secret_files": sorted({path for r in am.receivers for _, path in secret_files(r)}),
    }


def _each_evaluation(model: FleetModel, path: str) -> str:
    """How often a group without an interval of its own runs: at each evaluation of its server."""
    if path in rules.global_rule_files(model):
        return f"{model.global_tier.evaluation_interval} (each evaluation)"
    if path == rules.FLEET_RULES:  # no global tier: on whichever server the user gives the fleet rules
        return "each evaluation of its server"
    return f"{model.prometheus.evaluation_interval} (each evaluation)"


def rule_groups(model: FleetModel) -> list[dict]:
    """Every group of every rule file the rules generator writes, in its order."""
    return [{"name": group["name"], "file": path, "every": group.get("interval") or _each_evaluation(model, path),
             "records": sum("record" in rule for rule in group["rules"]),
             "alerts": _unique(rule["alert"] for rule in group["rules"] if "alert" in rule)}
            for path, document in rules.generate(model).items() for group in document["groups"]]


def dashboards(model: FleetModel) -> list[dict]:
    return [{"title": d["title"], "uid": d["uid"], "file": grafana.dashboard_path(name)}
            for name, d in grafana.dashboards(model).items()]


def blind_spots(model: FleetModel) -> list[dict]:
    """Enabled alerts an exporter setup serves no input of, as `gpuobs validate` names them."""
    return [{"job": exporter.job, "alert": alert, "needs": names, "remedy": blind_remedy(exporter, names)}
            for exporter, missing in coverage.unserved(model) for alert, names in missing]


def left_out(model: FleetModel) -> list[dict]:
    """Enabled alerts with no rule, since nothing in the fleet lets them fire, and why."""
    active = {a.name for a in rules.active_alerts(model)}
    return [{"name": a.name, "why": _why_left_out(model, a)} for a in model.alerts if a.name not in active]


def _why_left_out(model: FleetModel, alert: Alert) -> str:
    d = alert.definition
    if d.name == BLIND_ALERT:
        return "no exporter setup lacks a series an enabled alert reads"
    if d.section == "efficiency":  # GPUAllocatedIdle: no allocation is ever recorded
        return "no exporter setup of the fleet can name who holds a GPU"
    if not any(applicable(n, d) for n in names_of(model)):
        return f"it concerns only {CONCERNS[d.applies_to]}, and the fleet has none"
    if d.fallbacks:
        return f"no exporter setup serves what it reads; {' and '.join(d.fallbacks)} cover its GPUs instead"
    return "no exporter setup serves what it reads (see the blind spots above)"


def servers(model: FleetModel) -> list[dict]:
    """Each Prometheus the output configures: its configuration file, rule files and hosts."""
    if not model.per_cluster:
        return [{"name": "the fleet's Prometheus", "config": "prometheus/prometheus.yml",
                 "scrapes": f"{len(model.hosts)} host(s)", "rule_files": rules.served_rule_files(model)}]
    rows = []
    for s in model.servers:
        hosts = sum(h.cluster == s.cluster for h in model.hosts)
        for replica in s.replicas or (None,):
            rows.append({"name": f"{s.cluster}" + (f", replica {replica}" if replica else ""),
                         "config": f"{rules.cluster_folder(s.cluster)}/{prometheus.config_name(replica)}",
                         "scrapes": f"{hosts} host(s)", "rule_files": rules.served_rule_files(model, s.cluster)})
    if model.global_tier is not None:
        rows.append({"name": "the global tier", "config": f"{rules.GLOBAL_FOLDER}/prometheus.yml",
                     "scrapes": "the clusters' servers (/federate)", "rule_files": rules.global_rule_files(model)})
    return rows


def _kubernetes_folder(folder: str, hosts: list[Host]) -> dict:
    return {"folder": folder, "gpu_operator": any(h.exporter.kind == DCGM_EXPORTER for h in hosts)}


def kubernetes_folders(model: FleetModel) -> dict | None:
    """The kubernetes/ folders to apply, and the Secrets Alertmanager reads that must exist first."""
    k = model.kubernetes
    if k is None:
        return None
    if model.per_cluster:
        folders = [_kubernetes_folder(f"{kubernetes.FOLDER}/{s.cluster}", [h for h in model.hosts
                                                                          if h.cluster == s.cluster])
                   for s in model.servers]
    else:
        folders = [_kubernetes_folder(kubernetes.FOLDER, list(model.hosts))]
    secrets: dict[str, list[str]] = {}
    for _, secret, key in k.alertmanager_secrets if model.alertmanager else ():
        secrets.setdefault(secret, []).append(key)
    return {"settings": k, "folders": folders,
            "secrets": [(secret, sorted(set(keys))) for secret, keys in sorted(secrets.items())]}
