"""prometheus/prometheus.yml (and file_sd target files when the spec asks for them)."""

from __future__ import annotations

from gpuobs.generators.rules import GPU_EXPORTER_JOB, RULE_FILES
from gpuobs.model import FleetModel, Host

NODE_EXPORTER_JOB = "node-exporter"


def target_labels(model: FleetModel, host: Host) -> dict[str, str]:
    """Labels the scrape puts on every series of a host: identity first, then the spec's own."""
    labels = {"cluster": host.cluster, model.prometheus.host_label: host.name}
    if host.team:
        labels["team"] = host.team
    labels.update(host.labels)
    return labels


def _groups(model: FleetModel, port_of) -> list[dict]:
    return [{"targets": [h.target(port_of(h))], "labels": target_labels(model, h)}
            for h in model.hosts if port_of(h) is not None]


def _job(model: FleetModel, name: str, port_of, files: dict) -> dict:
    groups = _groups(model, port_of)
    if model.prometheus.service_discovery == "file_sd":
        path = f"file_sd/{name}.yml"
        files[f"prometheus/{path}"] = groups
        return {"job_name": name, "file_sd_configs": [{"files": [path]}]}
    return {"job_name": name, "static_configs": groups}


def retention_guidance(model: FleetModel) -> str:
    p = model.prometheus
    return (
        "# Retention: the rules look back at most 1h (z-scores) and alerts at most 15m, so any\n"
        f"# retention works for alerting; the spec asks for {p.retention} of history for dashboards.\n"
        f"# Set it on the server: prometheus --storage.tsdb.retention.time={p.retention}\n"
        "# Budget about 1-2 bytes per sample on disk: samples/day = series x 86400 / scrape interval.\n"
    )


def generate(model: FleetModel) -> dict[str, object]:
    p = model.prometheus
    files: dict[str, object] = {}
    global_section = {"scrape_interval": p.scrape_interval, "scrape_timeout": p.scrape_timeout,
                      "evaluation_interval": p.evaluation_interval}
    if p.external_labels:
        global_section["external_labels"] = dict(p.external_labels)
    scrape_configs = [
        _job(model, GPU_EXPORTER_JOB, lambda h: h.exporter_port, files),
        _job(model, NODE_EXPORTER_JOB, lambda h: h.node_exporter_port, files),
        {"job_name": "prometheus", "static_configs": [{"targets": [p.self_address]}]},
    ]
    if p.alertmanagers:
        scrape_configs.append({"job_name": "alertmanager",
                               "static_configs": [{"targets": list(p.alertmanagers)}]})
    config = {
        "global": global_section,
        "rule_files": [path.removeprefix("prometheus/") for path in RULE_FILES],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(p.alertmanagers)}]}]}
        if p.alertmanagers else {"alertmanagers": []},
        "scrape_configs": scrape_configs,
    }
    files["prometheus/prometheus.yml"] = config
    return files
