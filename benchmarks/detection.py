"""Detection latency on the demo settings: from starting a critical fault in the simulator to a
webhook receiving Alertmanager's notification of the alert made for it.

    python benchmarks/detection.py [--rounds 2]

generated/demo as committed runs on free ports with only its addresses changed: the simulator
(specs/demo.yaml, real time), Alertmanager, Prometheus and a webhook sink in this script. Each round
starts a fresh stack, so each alert opens a new Alertmanager group (group_by cluster, host, gpu) and
waits group_wait, not group_interval, and starts its faults at once, each on a GPU of its own.

The issue's bound is `for` + 2 x scrape interval + group_wait. The pipeline's worst case is
longer, and the evaluation interval is what the bound leaves out: a change shows in the simulator
within its snapshot interval plus a physics step, in Prometheus at the next scrape, in a recorded
series at its group's next evaluation (a hop of up to one evaluation interval per rule group the
alert reads through), in the alert at the alert group's next evaluation; `for` is counted in whole
evaluations (20 s at a 15 s interval fires on the second evaluation, 30 s after the first), and
Alertmanager holds a new group for group_wait. The table prints both next to the measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import math
import re
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import yaml
from local import Simulator, alertmanager_config, prometheus_config

from gpuobs.generate import load_model
from gpuobs.spec.schema import seconds
from gpuobs.stack import AlertmanagerServer, PrometheusServer, free_port

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "demo.yaml"
GENERATED = ROOT / "generated" / "demo"
MODEL = load_model(SPEC, ROOT / "generated")
HOST = MODEL.hosts[0].name
SIM_INTERVAL = SIM_STEP = 1.0  # the simulator's defaults, which SimulatorProcess keeps
# (fault, its parameters, the critical alert it must raise, GPU): xid-79 keeps the GPU on the bus.
FAULTS = (("xid-79", {"lost_after_s": 3600}, "GPUXidQuarantine", 1),
          ("row-remap-failure", {}, "GPURowRemapFailure", 2),
          ("power-excursion", {}, "GPUPowerCritical", 3))


class Settings:
    """The timings that bound detection, read from the generated files themselves."""

    def __init__(self, folder: Path):
        prometheus = yaml.safe_load((folder / "prometheus" / "prometheus.yml").read_text())["global"]
        self.scrape = seconds(prometheus["scrape_interval"])
        self.evaluation = seconds(prometheus["evaluation_interval"])
        rules = folder / "prometheus" / "rules"
        recording = yaml.safe_load((rules / "recording.yml").read_text())["groups"]
        self.recorded = {r["record"]: (g["name"], r["expr"]) for g in recording for r in g["rules"]}
        alerting = yaml.safe_load((rules / "alerts.yml").read_text())["groups"]
        self.alerts = {r["alert"]: (g["name"], r) for g in alerting for r in g["rules"]}
        route = yaml.safe_load((folder / "alertmanager" / "alertmanager.yml").read_text())["route"]
        critical = next((r for r in route.get("routes", []) if 'severity="critical"' in r.get("matchers", [])), {})
        self.group_wait = seconds(critical.get("group_wait", route["group_wait"]))

    def hold(self, alert: str) -> float:
        return seconds(self.alerts[alert][1].get("for", "0s"))

    def hops(self, alert: str) -> int:
        """Evaluations from the scrape to the alert: the alert's own, plus one for each change of
        rule group along the deepest chain of recorded series it reads (rules of one group run in
        order within one evaluation)."""
        def depth(expr: str, group: str, seen: frozenset) -> int:
            names = set(re.findall(r"[a-zA-Z_:][\w:]*", expr)) & set(self.recorded) - seen
            return max(((self.recorded[n][0] != group) + depth(self.recorded[n][1], self.recorded[n][0], seen | {n})
                        for n in names), default=0)

        group, rule = self.alerts[alert]
        return 1 + depth(rule["expr"], group, frozenset())

    def bound(self, alert: str) -> float:
        return self.hold(alert) + 2 * self.scrape + self.group_wait

    def worst(self, alert: str) -> float:
        held = math.ceil(self.hold(alert) / self.evaluation) * self.evaluation
        return SIM_INTERVAL + SIM_STEP + self.scrape + self.hops(alert) * self.evaluation + held + self.group_wait


@contextlib.contextmanager
def webhook_sink():
    """A webhook receiver on a free 127.0.0.1 port: yields (port, notifications, condition), where
    notifications collects (monotonic time, alertname, gpu, status) per alert received."""
    notifications: list[tuple[float, str, str, str]] = []
    condition = threading.Condition()

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's naming
            received = time.monotonic()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with condition:
                for alert in body["alerts"]:
                    labels = alert["labels"]
                    notifications.append((received, labels["alertname"], labels.get("gpu", ""), alert["status"]))
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


def wait_for(prom: PrometheusServer, query: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not prom.query(query):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing for {query} after {timeout:.0f} s")
        time.sleep(0.5)


def run_round(settings: Settings, tmp: Path) -> tuple[list[tuple], list[tuple]]:
    """Starts the stack and the faults; ([(fault, alert, gpu, seconds or None)], unexpected notifications)."""
    folder = tmp / "demo"
    shutil.copytree(GENERATED, folder)
    with contextlib.ExitStack() as stack:
        port, notifications, condition = stack.enter_context(webhook_sink())
        am_config = yaml.safe_load((folder / "alertmanager" / "alertmanager.yml").read_text())
        webhooks = {urllib.parse.urlsplit(w["url"]).netloc: f"127.0.0.1:{port}"
                    for r in am_config["receivers"] for w in r.get("webhook_configs", [])}
        alertmanager = AlertmanagerServer(alertmanager_config(folder, tmp / "alertmanager.yml", webhooks))
        stack.enter_context(alertmanager)
        sim = stack.enter_context(Simulator(SPEC))
        prom = PrometheusServer(tmp / "prometheus.yml")
        prometheus_config(folder, prom.config, sim.addresses(), MODEL.prometheus.host_label,
                          f"127.0.0.1:{prom.port}", f"127.0.0.1:{alertmanager.port}")
        stack.enter_context(prom)
        # The stack is running: the target is scraped and the recording rules have evaluated.
        wait_for(prom, 'up{job="gpu-exporter"} == 1', 4 * settings.scrape + 30)
        wait_for(prom, "gpu:power_usage:ratio_of_limit", 4 * settings.evaluation + 30)
        with condition:
            before = len(notifications)
        started = {}
        for fault, params, alert, gpu in FAULTS:
            started[(alert, str(gpu))] = time.monotonic()
            sim.request(f"/faults/{fault}", {"host": HOST, "gpu": gpu, "params": params}, method="POST")
        deadline = time.monotonic() + max(settings.worst(a) for _, _, a, _ in FAULTS) + 60
        first: dict[tuple[str, str], float] = {}
        with condition:
            while len(first) < len(FAULTS) and time.monotonic() < deadline:
                condition.wait(timeout=1)
                for received, alert, gpu, status in notifications[before:]:
                    if (alert, gpu) in started and status == "firing":
                        first.setdefault((alert, gpu), received)
            unexpected = [n for n in notifications if (n[1], n[2]) not in started and n[0] < min(started.values())]
    rows = [(fault, alert, gpu, first[(alert, str(gpu))] - started[(alert, str(gpu))]
             if (alert, str(gpu)) in first else None) for fault, _, alert, gpu in FAULTS]
    return rows, unexpected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="fresh stacks, one after another (default 1)")
    args = parser.parse_args()
    settings = Settings(GENERATED)
    print(f"demo settings: scrape every {settings.scrape:g} s, evaluation every {settings.evaluation:g} s, "
          f"group_wait {settings.group_wait:g} s; simulator snapshot every {SIM_INTERVAL:g} s, step {SIM_STEP:g} s")
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{'round':>5} {'fault':<18} {'alert':<19} {'GPU':>3} {'for s':>5} {'evals':>5} {'measured s':>10} "
          f"{'issue bound s':>13} {'worst case s':>12}")
    measured: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            rows, unexpected = run_round(settings, Path(tmp))
        for fault, alert, gpu, latency in rows:
            text = f"{latency:.1f}" if latency is not None else "none"
            print(f"{round_:>5} {fault:<18} {alert:<19} {gpu:>3} {settings.hold(alert):>5g} "
                  f"{settings.hops(alert):>5} {text:>10} {settings.bound(alert):>13g} {settings.worst(alert):>12g}",
                  flush=True)
            if latency is not None:
                measured.setdefault(alert, []).append(latency)
        if unexpected:
            print(f"      notifications before any fault (a healthy fleet should send none): {unexpected}")
    if args.rounds > 1:
        for alert, values in measured.items():
            print(f"{alert}: median {statistics.median(values):.1f} s, max {max(values):.1f} s "
                  f"over {len(values)} rounds")
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
