"""prometheus.yml (and file_sd target files when the spec asks for them): one for the fleet, or one
per cluster (per replica of an HA pair) scraping only that cluster's hosts."""

from __future__ import annotations

import posixpath

from gpuobs.generators.rules import GLOBAL_FOLDER, cluster_folder, served_rule_files
from gpuobs.model import ClusterServer, FleetModel, Host, RemoteWriteTarget

NODE_EXPORTER_JOB = "node-exporter"
REPLICA_LABEL = "replica"


def target_labels(model: FleetModel, host: Host) -> dict[str, str]:
    """Labels the scrape puts on every series of a host: identity first, then the spec's own."""
    labels = {"cluster": host.cluster, model.prometheus.host_label: host.name}
    if host.team:
        labels["team"] = host.team
    # The model the inventory puts on the host: thresholds follow it, whatever name the GPU reports.
    labels["gpu_model"] = host.gpu.key
    labels.update(host.labels)
    return labels


def _groups(model: FleetModel, hosts, port_of) -> list[dict]:
    return [{"targets": [h.target(port_of(h))], "labels": target_labels(model, h)}
            for h in hosts if port_of(h) is not None]


def _job(model: FleetModel, name: str, hosts, port_of, folder: str, files: dict) -> dict:
    groups = _groups(model, hosts, port_of)
    if model.prometheus.service_discovery == "file_sd":
        path = f"file_sd/{name}.yml"
        files[f"{folder}/{path}"] = groups
        return {"job_name": name, "file_sd_configs": [{"files": [path]}]}
    return {"job_name": name, "static_configs": groups}


def retention_guidance(model: FleetModel, path: str = "prometheus/prometheus.yml") -> str:
    p = model.prometheus
    if path.startswith(GLOBAL_FOLDER):
        held = ("# Retention: this server holds cluster-level and fleet series only (a few dozen per cluster);\n"
                f"# the spec asks for {p.retention} of history for dashboards.\n")
    else:
        held = ("# Retention: the rules look back at most 1h (z-scores) and alerts at most 15m, so any\n"
                f"# retention works for alerting; the spec asks for {p.retention} of history for dashboards.\n")
    return held + (
        f"# Set it on the server: prometheus --storage.tsdb.retention.time={p.retention}\n"
        "# Budget about 1-2 bytes per sample on disk: samples/day = series x 86400 / scrape interval.\n"
    )


def is_config(path: str) -> bool:
    """Whether a generated path is a Prometheus server's configuration (rather than rules or targets)."""
    name = posixpath.basename(path)
    return path.startswith("prometheus/") and name.startswith("prometheus") and name.endswith(".yml")


def remote_write(endpoints: tuple[RemoteWriteTarget, ...]) -> list[dict]:
    """remote_write entries; secrets are read from files by Prometheus, never written here."""
    out = []
    for e in endpoints:
        entry: dict = {"url": e.url}
        if e.basic_auth:
            entry["basic_auth"] = {"username": e.basic_auth[0], "password_file": e.basic_auth[1]}
        if e.bearer_token_file:
            entry["authorization"] = {"type": "Bearer", "credentials_file": e.bearer_token_file}
        if e.queue:
            entry["queue_config"] = dict(e.queue)
        out.append(entry)
    return out


def _config(model: FleetModel, hosts, folder: str, rule_files: list[str], external_labels: dict,
            files: dict, server: ClusterServer | None = None) -> dict:
    p = model.prometheus
    global_section = {"scrape_interval": p.scrape_interval, "scrape_timeout": p.scrape_timeout,
                      "evaluation_interval": p.evaluation_interval}
    if external_labels:
        global_section["external_labels"] = external_labels
    scrape_configs = [
        _job(model, exporter.job, [h for h in hosts if h.exporter is exporter], lambda h: h.exporter_port, folder,
             files)
        for exporter in model.exporters if any(h.exporter is exporter for h in hosts)
    ] + [
        _job(model, NODE_EXPORTER_JOB, hosts, lambda h: h.node_exporter_port, folder, files),
        {"job_name": "prometheus", "static_configs": [{"targets": [p.self_address]}]},
    ]
    if p.alertmanagers:
        scrape_configs.append({"job_name": "alertmanager",
                               "static_configs": [{"targets": list(p.alertmanagers)}]})
    alerting: dict = {}
    if server is not None and server.replicas:
        # Both replicas send every alert; without their replica label Alertmanager sees one alert.
        alerting["alert_relabel_configs"] = [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    alerting["alertmanagers"] = [{"static_configs": [{"targets": list(p.alertmanagers)}]}] if p.alertmanagers else []
    config = {
        "global": global_section,
        "rule_files": [posixpath.relpath(path, folder) for path in rule_files],
        "alerting": alerting,
    }
    if server is not None and server.remote_write:
        config["remote_write"] = remote_write(server.remote_write)
    config["scrape_configs"] = scrape_configs
    return config


def config_name(replica: str | None) -> str:
    return f"prometheus-{replica}.yml" if replica else "prometheus.yml"


def generate(model: FleetModel) -> dict[str, object]:
    files: dict[str, object] = {}
    if not model.per_cluster:
        files["prometheus/prometheus.yml"] = _config(model, model.hosts, "prometheus", served_rule_files(model),
                                                     dict(model.prometheus.external_labels), files)
        return files
    for server in model.servers:
        folder = cluster_folder(server.cluster)
        hosts = [h for h in model.hosts if h.cluster == server.cluster]
        for replica in server.replicas or (None,):
            labels = dict(server.external_labels)
            if replica:
                labels[REPLICA_LABEL] = replica
            files[f"{folder}/{config_name(replica)}"] = _config(
                model, hosts, folder, served_rule_files(model, server.cluster), labels, files, server)
    return files
