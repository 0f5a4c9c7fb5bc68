"""A generated configuration run on this machine for the benchmarks: the simulator on free ports,
and copies of the generated prometheus.yml and alertmanager.yml in which only addresses change.

Labels, intervals, rules and routes stay exactly as generated, so what the benchmarks measure is
what the generator wrote. Jobs for which nothing runs here (node-exporter) are left out rather
than pointed at ports that answer nothing or someone else's server.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import urllib.parse
from pathlib import Path

import yaml

from gpuobs.promql import seconds
from gpuobs.stack import SimulatorProcess, free_port


class Simulator(SimulatorProcess):
    """gpuobs-simulator for a spec with every host on a free port of its own (one target per host,
    as the generated scrape config has it) and extra flags; `addresses()` says where each host is."""

    def __init__(self, spec: Path, flags: list[str] | tuple[str, ...] = (), startup_timeout: float = 30,
                 time_scale: float = 1.0):
        super().__init__(spec, startup_timeout=startup_timeout, time_scale=time_scale)
        self.flags = list(flags)

    def arguments(self, storage: str) -> list[str]:
        return [*super().arguments(storage), "--base-port", "0", *self.flags]

    @property
    def pid(self) -> int:
        return self._process.pid

    def addresses(self) -> dict[str, str]:
        """{host name: 127.0.0.1:port} of every simulated host's /metrics."""
        return {h["name"]: urllib.parse.urlsplit(h["metrics"]).netloc for h in self.request("/hosts")}


def prometheus_config(folder: Path, out: Path, exporters: dict[str, str], host_label: str, prometheus: str,
                      alertmanager: str | None, gpu_jobs: tuple[str, ...] = ("gpu-exporter",)) -> Path:
    """`folder`'s prometheus/prometheus.yml written to `out`: each target of the GPU exporter jobs
    replaced by `exporters[<its host label>]`, the self-scrape by `prometheus`, the Alertmanager by
    `alertmanager` (None: no alerting, its job left out); rule files by absolute path."""
    source = folder / "prometheus"
    config = yaml.safe_load((source / "prometheus.yml").read_text())
    config["rule_files"] = [str(source / f) for f in config["rule_files"]]
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name in gpu_jobs:
            if "static_configs" not in job:
                raise ValueError(f"{source}: the {name} job must use static_configs (service_discovery: static)")
            for group in job["static_configs"]:
                group["targets"] = [exporters[group["labels"][host_label]]]
        elif name == "prometheus":
            job["static_configs"] = [{"targets": [prometheus]}]
        elif name == "alertmanager" and alertmanager is not None:
            job["static_configs"] = [{"targets": [alertmanager]}]
        else:
            continue
        jobs.append(job)
    config["scrape_configs"] = jobs
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def alertmanager_config(folder: Path, out: Path, webhooks: dict[str, str]) -> Path:
    """`folder`'s alertmanager/alertmanager.yml written to `out`, each webhook URL's host:port
    replaced through `webhooks` ({old host:port: new host:port})."""
    config = yaml.safe_load((folder / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            url = urllib.parse.urlsplit(webhook["url"])
            webhook["url"] = url._replace(netloc=webhooks[url.netloc]).geturl()
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def rule_groups(folder: Path) -> list[dict]:
    """Every rule group of `folder`'s generated rule files."""
    return [g for path in sorted((folder / "prometheus" / "rules").glob("*.yml"))
            for g in yaml.safe_load(path.read_text())["groups"]]


def group_intervals(folder: Path, every: float) -> dict[str, float]:
    """{group: seconds between its evaluations}: its own interval, else the global `every`."""
    return {g["name"]: seconds(g["interval"]) if "interval" in g else every for g in rule_groups(folder)}


@contextlib.contextmanager
def webhook_sink():
    """A webhook receiver on a free 127.0.0.1 port: yields (port, notifications, condition), where
    notifications collects (monotonic time, receiver path, alert) per alert received."""
    notifications: list[tuple[float, str, dict]] = []
    condition = threading.Condition()

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's naming
            received = time.monotonic()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with condition:
                notifications.extend((received, self.path.strip("/"), alert) for alert in body["alerts"])
                condition.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], notifications, condition
    finally:
        server.shutdown()
        server.server_close()
