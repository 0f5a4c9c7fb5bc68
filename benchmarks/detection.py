"""Detection latency on the demo settings: from a critical fault's onset in the simulator to a
webhook receiving Alertmanager's notification of the alert made for it, for every critical alert
of the catalog.

    python benchmarks/detection.py [--rounds 5] [--parallel 5]

The fleet is specs/demo.yaml (its intervals, routes and group_wait) with two more hosts for the
host-level faults (an exporter that stops answering, one that serves frozen readings), generated
by gpuobs into a temporary folder and run on free ports with only addresses changed: the simulator
(real time), Alertmanager, Prometheus and a webhook sink in this script. Each round starts a fresh
stack, so each alert opens a new Alertmanager group (group_by cluster, host, gpu) and waits
group_wait, not group_interval, and starts every fault at once, each on a GPU (or host) of its own.
Rounds run `--parallel` at a time: each stack is a few dozen series.

The onset is when the condition the alert tests first holds in the exporter: at once for most
faults; for the thermal runaway, when the simulator's temperature first reaches the critical
threshold (it warms with a 40 s time constant); for frozen readings, `exporter_stale_after` after
the collection stops. The bound is the issue's: onset + `for` + 2 x scrape interval + 1 x evaluation
interval + group_wait. The worst case the pipeline allows is printed next to it: the simulator's
snapshot and physics step, one scrape, the alert group's next evaluation, `for` counted in whole
evaluations (20 s at 15 s fires on the second evaluation, 30 s after the first), and group_wait.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import math
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml
from local import Simulator, alertmanager_config, group_intervals, prometheus_config, rule_groups, webhook_sink

from gpuobs.generate import generate, load_model
from gpuobs.generators.rules import CONFIGURATION_GROUPS
from gpuobs.promql import seconds
from gpuobs.stack import AlertmanagerServer, PrometheusServer

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "specs" / "demo.yaml"
GPU_HOST, DOWN_HOST, FROZEN_HOST = "gpu-node-01", "gpu-node-02", "gpu-node-03"
SIM_INTERVAL = SIM_STEP = 1.0  # the simulator's defaults, which SimulatorProcess keeps
# (fault, its parameters, the critical alert it must raise, host, GPU or None for the host).
# xid-79 with a long lost_after_s keeps the GPU on the bus; with 0 it falls off at once.
FAULTS = (
    ("thermal-runaway", {"rate_c_per_min": 6000}, "GPUThermalCritical", GPU_HOST, 0),
    ("power-excursion", {}, "GPUPowerCritical", GPU_HOST, 1),
    ("xid-79", {"lost_after_s": 3600}, "GPUXidQuarantine", GPU_HOST, 2),
    ("xid", {"code": 62}, "GPUXidReset", GPU_HOST, 3),
    ("row-remap-failure", {}, "GPURowRemapFailure", GPU_HOST, 4),
    ("ecc-storm", {"sbe_per_s": 0, "dbe_per_s": 1}, "GPUEccUncorrectable", GPU_HOST, 5),
    ("xid-79", {"lost_after_s": 0}, "GPUMissing", GPU_HOST, 6),
    # XID 154: the driver changed the GPU's recovery action, here to 1 (GPU reset).
    ("xid", {"code": 154, "recovery_action": 1}, "GPURecoveryActionPending", GPU_HOST, 7),
    ("exporter-hang", {"seconds": 3600}, "GPUExporterDown", DOWN_HOST, None),
    ("collection-stall", {}, "GPUExporterStale", FROZEN_HOST, None),
)


def fleet(tmp: Path):
    """The demo spec with the two extra hosts, generated: (spec path, model, generated folder)."""
    spec = yaml.safe_load(DEMO.read_text())
    first = spec["hosts"][0]
    for i, name in enumerate((DOWN_HOST, FROZEN_HOST), start=1):
        spec["hosts"].append({**first, "name": name, "gpus": {**first["gpus"], "count": 1},
                              "exporter_port": first["exporter_port"] + i,
                              "node_exporter_port": first["node_exporter_port"] + i})
    path = tmp / "detection.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    model = load_model(path)
    generate([path], tmp / "out")
    return path, model, tmp / "out" / model.name


class Settings:
    """The timings that bound detection, read from the generated files themselves."""

    def __init__(self, folder: Path):
        prometheus = yaml.safe_load((folder / "prometheus" / "prometheus.yml").read_text())["global"]
        self.scrape = seconds(prometheus["scrape_interval"])
        self.evaluation = seconds(prometheus["evaluation_interval"])
        groups = rule_groups(folder)
        self.every = group_intervals(folder, self.evaluation)
        # A fault never waits for series that follow configuration.
        self.recorded = {r["record"]: (g["name"], r["expr"]) for g in groups for r in g["rules"]
                         if "record" in r and g["name"] not in CONFIGURATION_GROUPS}
        self.alerts = {r["alert"]: (g["name"], r) for g in groups for r in g["rules"] if "alert" in r}
        route = yaml.safe_load((folder / "alertmanager" / "alertmanager.yml").read_text())["route"]
        critical = next((r for r in route.get("routes", []) if 'severity="critical"' in r.get("matchers", [])), {})
        self.group_wait = seconds(critical.get("group_wait", route["group_wait"]))

    def hold(self, alert: str) -> float:
        return seconds(self.alerts[alert][1].get("for", "0s"))

    def hops(self, alert: str) -> float:
        """Seconds of evaluation between the scrape and the alert, at worst: the alert group's
        interval, plus each other group's along the deepest chain of recorded series it reads
        (rules of one group run in order within one evaluation)."""
        def depth(expr: str, group: str, seen: frozenset) -> float:
            names = set(re.findall(r"[a-zA-Z_:][\w:]*", expr)) & set(self.recorded) - seen
            return max(((self.every[g] if g != group else 0) + depth(e, g, seen | {n})
                        for n in names for g, e in [self.recorded[n]]), default=0)

        group, rule = self.alerts[alert]
        return self.every[group] + depth(rule["expr"], group, frozenset())

    def bound(self, alert: str) -> float:
        return self.hold(alert) + 2 * self.scrape + self.evaluation + self.group_wait

    def worst(self, alert: str) -> float:
        group = self.alerts[alert][0]
        held = math.ceil(self.hold(alert) / self.every[group]) * self.every[group]
        return SIM_INTERVAL + SIM_STEP + self.scrape + self.hops(alert) + held + self.group_wait


def wait_for(prom: PrometheusServer, query: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not prom.query(query):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing for {query} after {timeout:.0f} s")
        time.sleep(0.5)


def exporter_reading(address: str, metric: str, gpu: int) -> float | None:
    """One GPU's reading as the simulator serves it right now."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    match = re.search(rf'^{metric}{{[^}}]*\bgpu="{gpu}"[^}}]*}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def watch_onset(address: str, threshold: float, gpu: int, deadline: float) -> float | None:
    """When the GPU's temperature, as served, first reaches `threshold` (monotonic time)."""
    while time.monotonic() < deadline:
        reading = exporter_reading(address, "DCGM_FI_DEV_GPU_TEMP", gpu)
        if reading is not None and reading >= threshold:
            return time.monotonic()
        time.sleep(0.25)
    return None


def run_round(spec: Path, model, folder: Path, settings: Settings, tmp: Path) -> tuple[list[tuple], list[tuple]]:
    """Starts a stack and the faults: ([(fault, alert, host, gpu, seconds from onset or None)],
    notifications that came before any fault)."""
    with contextlib.ExitStack() as stack:
        port, notifications, condition = stack.enter_context(webhook_sink())
        am_config = yaml.safe_load((folder / "alertmanager" / "alertmanager.yml").read_text())
        webhooks = {urllib.parse.urlsplit(w["url"]).netloc: f"127.0.0.1:{port}"
                    for r in am_config["receivers"] for w in r.get("webhook_configs", [])}
        alertmanager = AlertmanagerServer(alertmanager_config(folder, tmp / "alertmanager.yml", webhooks))
        stack.enter_context(alertmanager)
        sim = stack.enter_context(Simulator(spec))
        addresses = sim.addresses()
        prom = PrometheusServer(tmp / "prometheus.yml")
        prometheus_config(folder, prom.config, addresses, model.prometheus.host_label,
                          f"127.0.0.1:{prom.port}", f"127.0.0.1:{alertmanager.port}")
        stack.enter_context(prom)
        # The stack is running: every target is scraped and every rule group has evaluated.
        hosts = len(model.hosts)
        wait_for(prom, f'count(up{{job="gpu-exporter"}} == 1) == {hosts}', 4 * settings.scrape + 30)
        static = max(settings.every.values())
        critical = f'gpu:temperature_critical_threshold:celsius{{host="{GPU_HOST}", gpu="0"}}'
        wait_for(prom, critical, 2 * static + 30)
        wait_for(prom, "gpu:power_usage:ratio_of_limit", 2 * static + 30)
        threshold = float(prom.query(critical)[0]["value"][1])
        with condition:
            before = len(notifications)
        onset, started = {}, time.monotonic()
        for fault, params, alert, host, gpu in FAULTS:
            sim.request(f"/faults/{fault}", {"host": host, "gpu": gpu, "params": params}, method="POST")
            onset[alert] = time.monotonic()
        stale = model.prometheus.exporter_stale_seconds
        onset["GPUExporterStale"] += stale
        deadline = started + max(settings.worst(a) for *_, a, _, _ in FAULTS) + stale + 60
        onset["GPUThermalCritical"] = watch_onset(addresses[GPU_HOST], threshold, 0, deadline)
        first: dict[str, float] = {}
        with condition:
            while len(first) < len(FAULTS) and time.monotonic() < deadline:
                condition.wait(timeout=1)
                for received, _, sent in notifications[before:]:
                    alert, gpu, status = sent["labels"]["alertname"], sent["labels"].get("gpu", ""), sent["status"]
                    wanted = next((g for *_, a, _, g in FAULTS if a == alert), "missing")
                    if status == "firing" and gpu == ("" if wanted is None else str(wanted)):
                        first.setdefault(alert, received)
            unexpected = [(a["labels"]["alertname"], a["labels"].get("gpu", ""), a["status"])
                          for _, _, a in notifications[:before]]
    rows = [(fault, alert, host, gpu, first[alert] - onset[alert] if alert in first and onset[alert] else None)
            for fault, _, alert, host, gpu in FAULTS]
    return rows, unexpected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="fresh stacks (default 5)")
    parser.add_argument("--parallel", type=int, default=5, help="stacks at a time (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec, model, folder = fleet(Path(tmp))
        settings = Settings(folder)
        uncovered = {a.name for a in model.alerts if a.severity == "critical"} - {f[2] for f in FAULTS}
        if uncovered:
            raise SystemExit(f"critical alerts without a fault here: {sorted(uncovered)}")
        print(f"demo settings: scrape every {settings.scrape:g} s, evaluation every {settings.evaluation:g} s, "
              f"group_wait {settings.group_wait:g} s, exporter_stale_after "
              f"{model.prometheus.exporter_stale_seconds} s; "
              f"simulator snapshot every {SIM_INTERVAL:g} s, step {SIM_STEP:g} s")
        print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")

        def one(round_: int):
            with tempfile.TemporaryDirectory() as own:
                return round_, *run_round(spec, model, folder, settings, Path(own))

        print(f"{'round':>5} {'fault':<18} {'alert':<20} {'host/GPU':<14} {'for s':>5} {'measured s':>10} "
              f"{'bound s':>8} {'worst s':>8}")
        measured: dict[str, list[float]] = {}
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            for round_, rows, unexpected in pool.map(one, range(1, args.rounds + 1)):
                for fault, alert, host, gpu, latency in rows:
                    text = f"{latency:.1f}" if latency is not None else "none"
                    where = f"{host}/{gpu}" if gpu is not None else host
                    print(f"{round_:>5} {fault:<18} {alert:<20} {where:<14} {settings.hold(alert):>5g} {text:>10} "
                          f"{settings.bound(alert):>8g} {settings.worst(alert):>8g}", flush=True)
                    measured.setdefault(alert, []).append(latency if latency is not None else math.inf)
                if unexpected:
                    print(f"      notifications before any fault (a healthy fleet sends none): {unexpected}")
        print(f"{'alert':<20} {'median s':>8} {'max s':>8} {'bound s':>8}  within bound")
        for alert, values in measured.items():
            print(f"{alert:<20} {statistics.median(values):>8.1f} {max(values):>8.1f} {settings.bound(alert):>8g}  "
                  f"{sum(v <= settings.bound(alert) for v in values)}/{len(values)}")
        print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
