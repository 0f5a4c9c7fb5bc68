"""Every PromQL query of every generated dashboard (panels and variables), and the eight panels
of NVIDIA's stock dcgm-exporter dashboard, parse and return data in a real Prometheus that
scrapes exporter-shaped data for the fleet and a real Alertmanager.

The Prometheus configuration is the generated one with a faster clock, and every target moved
to 127.0.0.1: the fleet's hosts become local fake exporters; nothing else is contacted.
"""

import contextlib
import json
import re
import time

import pytest
import yaml
from fake_exporter import FakeExporter

from conftest import REFERENCE, ROOT, faster_rule_files, needs
from gpuobs.generate import load_model
from gpuobs.generators.grafana import all_queries
from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import GLOBAL_INVENTORY, rule_files
from gpuobs.links import EFFICIENCY, dashboard_title
from gpuobs.promql import seconds
from gpuobs.stack import AlertmanagerServer, PrometheusServer

pytestmark = [needs("prometheus"), needs("prometheus-alertmanager")]


def runnable(expr: str) -> str:
    """A dashboard query as Grafana would send it with every variable on All."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?(cluster|host|gpu|instance)\}?", ".*", expr)
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr, flags=re.S)
    return f"count by ({match.group(2)}) ({match.group(1)})" if match else expr


def local_config(model, source, exporters, prometheus, alertmanager, tmp_path) -> dict:
    """One Prometheus for the whole fleet, with every rule file the fleet has (also when the spec
    runs a Prometheus per cluster: the dashboards' queries are the same), on a 1 s clock."""
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}}
    config["rule_files"] = faster_rule_files(source, [f for f in rule_files(model) if f != GLOBAL_INVENTORY],
                                             tmp_path, 1 / seconds(model.prometheus.evaluation_interval))
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    labels = {h.name: target_labels(model, h) for h in model.hosts}
    config["scrape_configs"] = [
        {"job_name": "gpu-exporter", "static_configs": [
            {"targets": [exporters[name]], "labels": labels[name]} for name in exporters]},
        {"job_name": "prometheus", "static_configs": [{"targets": [prometheus]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [alertmanager]}]},
    ]
    return config


def model_name(fleet: str) -> str:
    return load_model(ROOT / "specs" / f"{fleet}.yaml").name


@contextlib.contextmanager
def fleet_stack(name: str, tmp_path):
    model = load_model(ROOT / "specs" / f"{name}.yaml")
    source = ROOT / "generated" / model.name
    with contextlib.ExitStack() as stack:
        exporters = {h.name: stack.enter_context(FakeExporter(h.name, h.gpu.nvml_name, h.gpu_count)).target
                     for h in model.hosts}
        am = stack.enter_context(AlertmanagerServer(source / "alertmanager" / "alertmanager.yml"))
        prom = PrometheusServer(tmp_path / "prometheus.yml")
        config = local_config(model, source, exporters, f"127.0.0.1:{prom.port}", f"127.0.0.1:{am.port}", tmp_path)
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        yield stack.enter_context(prom), source


def missing_data(prom, queries, timeout: float = 90) -> dict:
    """{where: query} of the queries still empty at the deadline; parse errors raise at once."""
    pending = dict(queries)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for where, expr in list(pending.items()):
            if prom.query(runnable(expr)):
                del pending[where]
        if pending:
            time.sleep(1)
    return pending


@pytest.mark.parametrize("fleet", ["demo", "fleet"])
def test_every_dashboard_query_returns_data(fleet, tmp_path):
    with fleet_stack(fleet, tmp_path) as (prom, source):
        queries = {}
        for path in sorted((source / "grafana" / "dashboards").glob("*.json")):
            queries.update(all_queries(json.loads(path.read_text())))
        assert len(queries) > 60
        efficiency = f"{dashboard_title(model_name(fleet), EFFICIENCY)} / "
        assert sum(k.startswith(efficiency) for k in queries) >= 10, "the efficiency dashboard's panels"
        if fleet == "demo":
            stock = json.loads((REFERENCE / "dcgm-exporter" / "dcgm-exporter-dashboard.json").read_text())
            for panel in stock["panels"]:
                for target in panel.get("targets", []):
                    queries[f"NVIDIA stock dashboard / {panel['title']}"] = target["expr"]
            assert sum(k.startswith("NVIDIA") for k in queries) == 8
        empty = missing_data(prom, queries)
        assert not empty, "queries without data:\n" + "\n".join(f"{k}: {v}" for k, v in empty.items())
