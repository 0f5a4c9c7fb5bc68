"""The global tier: a Prometheus that federates every cluster's cluster-level series and runs the
fleet rules over them (prometheus/global/prometheus.yml)."""

from __future__ import annotations

import posixpath

from gpuobs.generators.prometheus import REPLICA_LABEL, remote_write
from gpuobs.generators.rules import GLOBAL_FOLDER, federated_names, global_rule_files
from gpuobs.model import FleetModel

FEDERATE_JOB = "federate"


def match_selectors(model: FleetModel) -> list[str]:
    """/federate's match[]: the cluster-level recording rules, by exact name. Per-GPU series stay in
    their cluster, so the global tier's size depends on the number of clusters, not of GPUs."""
    return [f'{{__name__="{name}"}}' for name in federated_names(model)]


def generate(model: FleetModel) -> dict[str, object]:
    g = model.global_tier
    if g is None:
        return {}
    p = model.prometheus
    global_section = {"scrape_interval": g.scrape_interval, "scrape_timeout": g.scrape_timeout,
                      "evaluation_interval": g.evaluation_interval}
    if g.external_labels:
        global_section["external_labels"] = dict(g.external_labels)
    federate = {
        "job_name": FEDERATE_JOB,
        # Keep the clusters' own labels (cluster, and their external labels) on what is federated.
        "honor_labels": True,
        # Stamped at the scrape, so a series that leaves /federate (a GPU out of a cluster's top ten,
        # a severity no longer firing) goes stale at once: Prometheus 2.42 writes no staleness
        # markers for samples that carry their own timestamps, and they would linger for 5 minutes.
        "honor_timestamps": False,
        "metrics_path": "/federate",
        "params": {"match[]": match_selectors(model)},
        "static_configs": [{"targets": [s.address], "labels": {"cluster": s.cluster}} for s in model.servers],
    }
    if any(s.replicas for s in model.servers):
        # An HA pair behind one address answers from either replica: one series either way.
        federate["metric_relabel_configs"] = [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    config: dict = {
        "global": global_section,
        "rule_files": [posixpath.relpath(path, GLOBAL_FOLDER) for path in global_rule_files(model)],
    }
    if g.remote_write:
        config["remote_write"] = remote_write(g.remote_write)
    config["scrape_configs"] = [federate, {"job_name": "prometheus", "static_configs": [{"targets": [p.self_address]}]}]
    return {f"{GLOBAL_FOLDER}/prometheus.yml": config}
