"""Alert truth: do the generated alerts catch the failures that really happen, and stay quiet otherwise?

    nice -n 19 python benchmarks/alert_truth.py [--hosts 32] [--injections 64] [--minutes 8]

Replays the failure mix of failure_mix.py (Meta's Llama 3 interruption causes) on a simulated fleet
of H200 hosts (8 GPUs each; 32 hosts make 256 GPUs) under a training load (--workload training: jobs
of hours near 100 % utilization, framebuffer 95-99 % held, power pinned at the enforced limit by the
software power cap, idle gaps), with a real Prometheus and Alertmanager on the configuration gpuobs
generates and a webhook receiver per severity.

As tests/test_e2e_alerts.py does, the fleet is specs/demo.yaml's settings with every duration the
spec names divided by --scale (scrape and evaluation interval, each alert's `for`, group_wait and
group_interval, the stale threshold) and the simulator running --scale times faster than the wall
clock; rule windows ([5m]) stay wall-clock. Alerts off by default stay off.

Each injection is one variant of a class on a GPU (or host) of its own, all started together once
every target is scraped; variants marked at_start run from the simulator's first second, before
Prometheus' first scrape. Detected: a firing notification of an expected alert for that GPU (or its
host) reached the receiver the generated routing gives it (amtool config routes test). Time to
detect runs from the injection (from the first complete scrape for at_start variants) to that
notification (for the thermal variant that includes the seconds the GPU takes to heat past its
critical threshold), against the alert's bound: `for` + 2 scrapes + 1 evaluation + group_wait (wall
seconds in the scaled stack; times --scale in simulated time). False alerts: firing notifications
for GPUs and hosts without an injection, per 1,000 GPU-days of that healthy remainder in simulated
time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from detection import Settings, wait_for
from failure_mix import CLASSES, SOURCE, TOTAL, Variant, allocate
from local import Simulator, prometheus_config, webhook_sink

from gpuobs.alerts import ALERTS
from gpuobs.generate import generate, load_model
from gpuobs.promql import seconds
from gpuobs.stack import AlertmanagerServer, PrometheusServer
from gpuobs.tools import amtool_receivers

ROOT = Path(__file__).resolve().parent.parent
MODEL = "H200-SXM5-141GB"
RECEIVERS = {"critical": "pager", "warning": "chat", "info": "owners"}


class CheckoutSimulator(Simulator):
    """This checkout's simulator, whatever gpuobs-simulator on PATH belongs to: the faults and the
    training workload replayed are the ones next to this script."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.binary = Path(sys.executable).name  # a bare name: it also names the server's temporary folder

    def arguments(self, storage: str) -> list[str]:
        start = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                 "from exporters.simulator.cli import main; sys.exit(main())")
        return ["-c", start, *super().arguments(storage)]


def scaled(duration: str, scale: int) -> str:
    total = seconds(duration)
    return "0s" if total == 0 else f"{max(1, math.ceil(total / scale))}s"


def fleet_spec(hosts: int, gpus: int, scale: int, sink: str) -> dict:
    """specs/demo.yaml's settings on `hosts` H200 hosts, every duration divided by `scale`, one webhook
    receiver per severity."""
    spec = yaml.safe_load((ROOT / "specs" / "demo.yaml").read_text())
    demo = load_model(ROOT / "specs" / "demo.yaml")
    template = spec["hosts"][0]
    spec["hosts"] = [{**copy.deepcopy(template), "name": f"gpu-node-{i:03d}", "exporter_port": 20000 + i,
                      "node_exporter_port": None, "gpus": {"model": MODEL, "count": gpus}}
                     for i in range(1, hosts + 1)]
    # The demo prices its own GPU model; a price for a model no host has is a spec error.
    prices = spec.get("efficiency", {}).get("gpu_hour_price")
    if prices:
        spec["efficiency"]["gpu_hour_price"] = {MODEL: next(iter(prices.values()))}
    prom = spec["prometheus"]
    spec["prometheus"] = {**prom, "scrape_interval": scaled(prom["scrape_interval"], scale),
                          "evaluation_interval": scaled(prom["evaluation_interval"], scale),
                          "exporter_stale_after": scaled(f"{demo.prometheus.exporter_stale_seconds}s", scale)}
    # Naming an alert turns it on: only those on by default are named (to scale their `for`).
    spec["alerts"] = {a.name: {"for": scaled(a.for_, scale)} for a in ALERTS if a.on_by_default}
    routing = spec["alertmanager"]["routing"]
    # A route no alert can take is a spec error: info has one once an alert has that severity.
    receivers = {s: r for s, r in RECEIVERS.items() if any(a.severity == s for a in ALERTS if a.on_by_default)}
    spec["alertmanager"] = {
        "receivers": [{"name": name, "webhook": {"url": f"{sink}/{name}"}} for name in receivers.values()],
        "routing": {**routing, "by_severity": receivers, "group_wait": scaled(routing["group_wait"], scale),
                    "group_interval": scaled(routing["group_interval"], scale), "repeat_interval": "1h"},
    }
    return spec


@dataclass
class Injection:
    cls: str
    variant: Variant
    host: str
    gpu: int | None
    started: float = 0.0
    detected: float | None = None
    detected_by: str = ""
    seen: frozenset = frozenset()  # every alert notified for it, with its receiver


def plan(hosts: list[str], gpus: int, injections: int, minimum: int) -> list[Injection]:
    """Each class's injections spread over its variants in turn; host-level ones take hosts from the
    end of the list, GPU-level ones one GPU per host in turn over the others."""
    counts = allocate(injections, minimum)
    planned, free_hosts, slot = [], list(hosts), 0
    for cls in CLASSES:
        for i in range(counts.get(cls.name, 0)):
            variant = cls.variants[i % len(cls.variants)]
            if variant.host_level:
                planned.append(Injection(cls.name, variant, free_hosts.pop(), None))
            else:
                planned.append(Injection(cls.name, variant, "", None))
    gpu_hosts = free_hosts
    for injection in planned:
        if not injection.variant.host_level:
            injection.host, injection.gpu = gpu_hosts[slot % len(gpu_hosts)], slot // len(gpu_hosts)
            slot += 1
    if slot > len(gpu_hosts) * gpus:
        raise SystemExit(f"{slot} GPU injections do not fit on {len(gpu_hosts)} hosts of {gpus} GPUs")
    return planned


def scenario(planned: list[Injection], path: Path) -> Path:
    """The at_start variants as a scenario: active from the first simulated second."""
    events = [{"at": 0, "start": name, "host": i.host, "gpu": i.gpu, "params": params,
               "duration": dict(i.variant.durations).get(name)}
              for i in planned if i.variant.at_start for name, params in i.variant.faults]
    path.write_text(yaml.safe_dump({"events": events}))
    return path


def concerns(alert: dict, host: str, gpu: int | None) -> bool:
    labels = alert["labels"]
    return labels.get("host") == host and (gpu is None or labels.get("gpu") in (None, str(gpu)))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp, webhook_sink() as (port, notifications, condition):
        tmp, sink = Path(tmp), f"http://127.0.0.1:{port}"
        spec_path = tmp / "truth.yaml"
        spec_path.write_text(yaml.safe_dump(fleet_spec(args.hosts, args.gpus, args.scale, sink), sort_keys=False))
        model = load_model(spec_path)
        generate([spec_path], tmp / "out")
        folder = tmp / "out" / model.name
        settings = Settings(folder)
        am_yml = folder / "alertmanager" / "alertmanager.yml"
        hosts = [h.name for h in model.hosts]
        planned = plan(hosts, args.gpus, args.injections, args.min_per_class)
        flags = ["--workload", "training", "--step", "2", "--seed", str(args.seed),
                 "--scenario", str(scenario(planned, tmp / "scenario.yaml"))]
        with contextlib.ExitStack() as stack:
            alertmanager = stack.enter_context(AlertmanagerServer(am_yml))
            sim = stack.enter_context(CheckoutSimulator(spec_path, flags, time_scale=args.scale, startup_timeout=120))
            prom = PrometheusServer(tmp / "prometheus.yml", startup_timeout=60)
            prometheus_config(folder, prom.config, sim.addresses(), model.prometheus.host_label,
                              f"127.0.0.1:{prom.port}", f"127.0.0.1:{alertmanager.port}")
            stack.enter_context(prom)
            gpus = args.hosts * args.gpus
            wait_for(prom, f'count(up{{job="gpu-exporter"}} == 1) == {args.hosts}', 120)
            ready = time.monotonic()
            wait_for(prom, f"count(gpu:health:score) >= {gpus - sum(1 for i in planned if i.variant.at_start)}", 120)
            for injection in planned:
                injection.started = ready if injection.variant.at_start else time.monotonic()
                if injection.variant.at_start:
                    continue
                for name, params in injection.variant.faults:
                    sim.request(f"/faults/{name}", {"host": injection.host, "gpu": injection.gpu, "params": params},
                                method="POST")
            injected = time.monotonic()
            print(f"{len(planned)} injections started {injected - ready:.1f} s after the first complete scrape; "
                  f"watching {args.minutes:g} min", flush=True)
            time.sleep(args.minutes * 60)
            watched = time.monotonic() - ready
            label = model.prometheus.host_label
            scores = {(r["metric"].get(label), r["metric"].get("gpu")): float(r["value"][1])
                      for r in prom.query("gpu:health:score")}
            window = f"{int(watched)}s"
            pipeline = {"up": {r["metric"][label]: float(r["value"][1]) for r in prom.query(
                            f'avg_over_time(up{{job="gpu-exporter"}}[{window}])')},
                        "slowest": max(float(r["value"][1]) for r in prom.query(
                            f'max_over_time(scrape_duration_seconds{{job="gpu-exporter"}}[{window}])'))}
        with condition:
            received = list(notifications)
        report(args, planned, received, settings, am_yml, gpus, watched, scores, pipeline)


def report(args, planned: list[Injection], notifications: list, settings: Settings, am_yml: Path, gpus: int,
           watched: float, scores: dict, pipeline: dict) -> None:
    routes: dict[tuple, list[str]] = {}

    def receivers(alert: dict) -> list[str]:
        labels = dict(alert["labels"])
        key = tuple(sorted(labels.items()))
        if key not in routes:
            routes[key] = amtool_receivers(am_yml, labels)
        return routes[key]

    firing = [(t, path, a) for t, path, a in notifications if a["status"] == "firing"]
    for injection in planned:
        mine = [(t, path, a) for t, path, a in firing if concerns(a, injection.host, injection.gpu)]
        injection.seen = frozenset(f"{a['labels']['alertname']}->{path}" for _, path, a in mine)
        for t, path, a in sorted(mine, key=lambda n: n[0]):
            if a["labels"]["alertname"] in injection.variant.expects and path in receivers(a):
                injection.detected, injection.detected_by = t - injection.started, a["labels"]["alertname"]
                break

    sim_days = watched * args.scale / 86400
    faulty_hosts = {i.host for i in planned if i.gpu is None}
    faulty_gpus = {(i.host, str(i.gpu)) for i in planned if i.gpu is not None}
    healthy = gpus - len(faulty_hosts) * args.gpus - len(faulty_gpus)
    false = {}
    for _, _, a in firing:
        labels = a["labels"]
        host, gpu = labels.get("host"), labels.get("gpu")
        if host in faulty_hosts or (host, gpu) in faulty_gpus:
            continue
        if gpu is None and any(h == host for h, _ in faulty_gpus) and labels["alertname"] == "GPUMissing":
            continue  # the host of a GPU that fell off the bus
        false.setdefault((labels["alertname"], host, gpu, a["startsAt"]), labels.get("severity"))

    print(f"\nfleet: {gpus} x {MODEL} on {args.hosts} hosts, training load; time scale {args.scale}: watched "
          f"{watched:.0f} wall s = {watched * args.scale / 3600:.1f} simulated h")
    failed = [1 - share for host, share in pipeline["up"].items() if host not in faulty_hosts]
    print(f"this machine: load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end; "
          f"{100 * sum(failed) / len(failed):.1f} % of scrapes of hosts without a host fault failed, slowest "
          f"scrape {pipeline['slowest']:.2f} s (scrape interval {settings.scrape:g} s)")
    if any(failed):
        print("  WARNING: the stack was starved (scrapes failed on healthy hosts): GPUExporterDown and "
              "GPUExporterStale on them, and late detections, are this machine's, not the alerts'; rerun on an "
              "idle machine")
    print(f"stack: scrape every {settings.scrape:g} s, evaluation every {settings.evaluation:g} s, group_wait "
          f"{settings.group_wait:g} s (wall); mix: {SOURCE}, {TOTAL} interruptions")
    print(f"\n{'class / variant':<52} {'paper':>6} {'inj':>4} {'det':>4} {'recall':>7} {'median s':>8} "
          f"{'p95 s':>6} {'bound s':>7}  expected alert(s)")
    gaps = []
    for cls in CLASSES:
        mine = [i for i in planned if i.cls == cls.name]
        if not cls.variants:
            print(f"{cls.name:<52} {cls.percent:>5.1f}% {'-':>4} {'-':>4} {'-':>7} {'':>8} {'':>6} {'':>7}  "
                  f"no GPU-level signal: {cls.note}")
            continue
        print(_row(cls.name, f"{cls.percent:>5.1f}%", mine, settings, ""))
        for variant in cls.variants:
            runs = [i for i in mine if i.variant is variant]
            if not runs:
                continue
            expected = ", ".join(variant.expects) or "NONE EXISTS"
            print(_row(f"  {variant.name}", "", runs, settings, expected))
            detected = [i for i in runs if i.detected is not None]
            if len(detected) < 0.95 * len(runs):
                seen = sorted(set().union(*(i.seen for i in runs))) or ["nothing"]
                gaps.append(f"{cls.name} / {variant.name}: {len(detected)}/{len(runs)} detected by "
                            f"{expected}; notified instead: {', '.join(seen)}")
            late = [i for i in detected if i.detected > settings.bound(i.detected_by)]
            if late:
                gaps.append(f"{cls.name} / {variant.name}: {len(late)} detected past the bound "
                            f"({', '.join(f'{i.detected:.1f} s' for i in late)})")
    print("\nother notifications for the injected GPUs and hosts (follow-ons, companions):")
    for cls in CLASSES:
        for variant in cls.variants:
            runs = [i for i in planned if i.variant is variant]
            seen = set().union(*(i.seen for i in runs)) if runs else set()
            others = sorted(n for n in seen if n.split("->")[0] not in variant.expects)
            if others:
                print(f"  {variant.name:<50} {', '.join(others)}")
    gpu_days = healthy * sim_days
    print(f"\nfalse alerts on the healthy remainder ({healthy} GPUs, {gpu_days:.1f} simulated GPU-days):")
    for severity in ("critical", "warning", "info"):
        found = sorted(k for k, s in false.items() if s == severity)
        rate = 1000 * len(found) / gpu_days if gpu_days else math.nan
        names = sorted({k[0] for k in found})
        print(f"  {severity:<8} {len(found):>4}  = {rate:7.1f} per 1,000 GPU-days  {', '.join(names)}")
    healthy_scores = [v for (host, gpu), v in scores.items()
                      if host not in faulty_hosts and (host, gpu) not in faulty_gpus]
    if healthy_scores:
        print(f"  health score of the healthy remainder at the end: min {min(healthy_scores):.2f}, median "
              f"{statistics.median(healthy_scores):.2f} (1 is perfect; GPUHealthLow fires below its threshold)")
    print("\ngaps:" if gaps else "\ngaps: none")
    for gap in gaps:
        print(f"  - {gap}")


def _row(name: str, paper: str, runs: list[Injection], settings: Settings, expected: str) -> str:
    times = [i.detected for i in runs if i.detected is not None]
    bounds = {settings.bound(i.detected_by) for i in runs if i.detected is not None}
    recall = f"{100 * len(times) / len(runs):.0f}%" if runs else "-"
    median = f"{statistics.median(times):.1f}" if times else "-"
    p95 = f"{percentile(times, 0.95):.1f}" if times else "-"
    bound = "/".join(f"{b:g}" for b in sorted(bounds)) or "-"
    return (f"{name:<52} {paper:>6} {len(runs):>4} {len(times):>4} {recall:>7} {median:>8} {p95:>6} {bound:>7}  "
            f"{expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=32, help="H200 hosts (default 32: 256 GPUs)")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs per host (default 8)")
    parser.add_argument("--injections", type=int, default=64, help="failures replayed (default 64)")
    parser.add_argument("--min-per-class", type=int, default=3, help="least per class with a signal (default 3)")
    parser.add_argument("--minutes", type=float, default=8, help="wall minutes watched after injecting (default 8)")
    parser.add_argument("--scale", type=int, default=15, help="time scale (default 15, as the e2e tests)")
    parser.add_argument("--seed", type=int, default=1)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
