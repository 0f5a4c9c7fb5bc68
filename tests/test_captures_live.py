"""The vendored real scrapes (tests/captures/) served to a real Prometheus running the generated
configuration: one host per capture, each in a cluster whose `exporter:` matches the capture (so
dcgm-exporter 3.x, 4.x and nvidia_gpu_exporter hosts share one Prometheus, each read through its
own scrape job), and a real Alertmanager.

Proved: every per-GPU recording rule has a value for every scrape job whose series it reads; every
other recording rule has a value; every query of every generated dashboard returns data, except on
panels whose description says no scrape job of this fleet serves them (and the time-to-critical
forecast, which needs a GPU warming up).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time

import pytest
import yaml
from test_captures import CAPTURES, CAPTURES_DIR, Scrape, spec_for
from test_dashboards_live import missing_data

from conftest import needs, until
from gpuobs.alerts import xid
from gpuobs.alerts.coverage import MISSING_SERIES
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.grafana import all_queries
from gpuobs.generators.rules import ALERT_RULES, RECORDING_RULES
from gpuobs.series import NVLINK_ERRORS, PAST_WARNING
from gpuobs.stack import AlertmanagerServer, PrometheusServer, free_port

pytestmark = [needs("prometheus"), needs("prometheus-alertmanager")]

# The health dashboard's time to the critical temperature needs a GPU warming up (a rising
# temperature): flat captures give it nothing, rightly.
NEEDS_CHANGE = ("deriv(",)
# Counts firing alerts by severity; nothing fires before GPUAlertBlind's `for` (10m).
NEEDS_FIRING = {"cluster:alerts_firing:count"}
# Sparse by design: only GPUs past a warning threshold, with a recent XID or NVLink errors, or
# lacking a series they serve elsewhere.
NEEDS_FAULT = {name for name, _, _ in PAST_WARNING.values()} | {MISSING_SERIES, xid.RECENT, NVLINK_ERRORS}


class _Capture(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(text: str, port: int):
    handler = type("Handler", (_Capture,), {"body": text.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def fleet_spec(ports: dict[str, int], alertmanager: int, prometheus: int) -> dict:
    """One cluster and host per capture, as tests/test_captures.py describes each."""
    clusters, hosts = [], []
    for i, capture in enumerate(CAPTURES):
        one = spec_for(capture, Scrape(capture))
        cluster = f"c{i}"
        clusters.append({"name": cluster, "exporter": one["clusters"][0]["exporter"]})
        host = one["hosts"][0]
        hosts.append({**host, "name": f"{capture.id.split('-')[-2]}-{i}", "cluster": cluster,
                      "address": "127.0.0.1", "exporter_port": ports[capture.file], "node_exporter_port": None})
    return {
        "version": 1, "name": "captures-live", "clusters": clusters, "hosts": hosts,
        "prometheus": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
                       "self_address": f"127.0.0.1:{prometheus}",
                       "alertmanagers": [f"127.0.0.1:{alertmanager}"], "exporter_stale_after": "1m"},
        "alertmanager": {"receivers": [{"name": "sink", "webhook": {"url": "http://127.0.0.1:9/"}}],
                         "routing": {"by_severity": {"critical": "sink", "warning": "sink"}}},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("captures-live")
    ports = {c.file: free_port() for c in CAPTURES}
    am_port, prom_port = free_port(), free_port()
    path = tmp / "captures-live.yaml"
    path.write_text(yaml.safe_dump(fleet_spec(ports, am_port, prom_port), sort_keys=False))
    model = load_model(path)
    out = tmp / "out" / model.name
    write_tree(out, render(model))
    with contextlib.ExitStack() as stack:
        for capture in CAPTURES:
            stack.enter_context(serve((CAPTURES_DIR / capture.file).read_text(), ports[capture.file]))
        stack.enter_context(AlertmanagerServer(out / "alertmanager" / "alertmanager.yml", port=am_port))
        prom = stack.enter_context(PrometheusServer(out / "prometheus" / "prometheus.yml", port=prom_port))
        until(lambda: len(prom.query("gpu:present:bool")) == len(CAPTURES), 60,
              lambda: f"every capture's GPU present; got {prom.query('gpu:present:bool')}")
        # Alertmanager's counters are rated over two scrapes at least.
        until(lambda: prom.query("count_over_time(alertmanager_notifications_total[1m]) > 1"), 60,
              lambda: f"two scrapes of Alertmanager; targets: {prom.query('up')}")
        time.sleep(5)  # a few more evaluations, so rules that read other rules have run
        yield prom, out, model


def test_each_capture_is_scraped_through_its_exporter_s_own_job(stack):
    prom, _, model = stack
    jobs = {r["metric"]["job"] for r in prom.query("gpu:present:bool")}
    assert jobs == {e.job for e in model.exporters}
    assert len(jobs) == 4  # gpuobs has none here: two dcgm-exporter 4.x counter sets, one 3.x, nvidia_gpu_exporter


def test_every_recording_rule_has_values_for_each_job_it_reads(stack):
    prom, out, _ = stack
    groups = [g for path in (RECORDING_RULES, ALERT_RULES) for g in yaml.safe_load((out / path).read_text())["groups"]]
    queries = set()
    for rule in (r for g in groups for r in g["rules"] if "record" in r):
        record = rule["record"]
        if record in NEEDS_FIRING | NEEDS_FAULT:
            continue
        # A per-GPU record keeps its scrape job; aggregates (host:, cluster:) drop it.
        jobs = set(re.findall(r'job="([^"]+)"', rule["expr"])) if record.startswith("gpu:") else set()
        queries |= {f'count({record}{{job="{job}"}})' if job else f"count({record})" for job in jobs or {None}}
    # Groups of the slower tiers run on clocks of their own; a bounded wait for all of them.
    deadline = time.monotonic() + 60
    while (missing := sorted(q for q in queries if not prom.query(q))) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, "recording rules without values:\n" + "\n".join(missing)


def test_every_dashboard_query_returns_data_unless_no_job_serves_it(stack):
    prom, out, model = stack
    jobs = {e.job for e in model.exporters}
    queries, unserved = {}, set()
    for path in sorted((out / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        queries.update(all_queries(dashboard))
        for panel in dashboard["panels"]:
            said = re.search(r"Not served by scrape jobs? ([^:]+):", panel.get("description", ""))
            if said and set(said.group(1).split(", ")) >= jobs:
                unserved.add(f"{dashboard['title']} / {panel['title']}")
    expected = {where: expr for where, expr in queries.items() if where.rsplit(" / ", 1)[0] not in unserved
                and not any(name in expr for name in NEEDS_CHANGE)}
    assert len(expected) > 50
    unexplained = missing_data(prom, expected, timeout=30)
    assert not unexplained, "queries without data:\n" + "\n".join(f"{k}: {v}" for k, v in unexplained.items())
