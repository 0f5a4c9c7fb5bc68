"""Series counts: per GPU at the cluster tier, with workload attribution off and on, and what the
global tier carries for a large fleet.

    python benchmarks/cardinality.py                       # 10,000 GPUs: 1,250 hosts x 8 over 4 clusters
    python benchmarks/cardinality.py --hosts 2500 --clusters 8

Cluster tier, measured: the simulator serves specs/demo.yaml (one host, 8 x A100) to a real
Prometheus running the generated rules of generated/demo (1 s intervals); once every rule group
has produced its series, the series are counted by kind. The simulator serves what gpuobs'
exporter serves; dcgm-exporter's set differs with its counters CSV. It runs twice: without
workloads, then with pods and HPC jobs on every GPU (`--pods --hpc-jobs`: the exporters'
`--kubernetes-pod-resources` and `--hpc-job-mapping-dir`), which adds labels, not exporter series,
and feeds the efficiency rules' per-allocation and per-workload series.

Per-process series (`--process-metrics`), rendered by the exporter's own code for a GPU running a
given number of processes, at the default cap of 10 per GPU: the simulator runs no processes.

Global tier, computed from the generated rules of a spec of the given size with a global tier:
per cluster, one series per federated cluster-level rule (the histogram has one rule per bucket),
ten for each top-ten rule, and one per severity while alerts of that severity fire; then the
global tier's own inventory and fleet rules. tests/test_federation_live.py counts the same per
cluster on a real global Prometheus.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporters.exposition import Builder, gpu_entity  # noqa: E402
from exporters.nvml_processes import Processes, _Process  # noqa: E402
from exporters.simulator.fleet import Fleet  # noqa: E402
from exporters.simulator.layout import from_spec  # noqa: E402
from exporters.simulator.runtime import SimClock, Simulation  # noqa: E402
from gpuobs.generate import load_model, render  # noqa: E402
from gpuobs.generators.rules import FLEET_RULES, GLOBAL_INVENTORY, RECORDING_RULES, federated_names  # noqa: E402
from gpuobs.promql import seconds  # noqa: E402
from gpuobs.stack import PrometheusServer  # noqa: E402

KINDS = {  # (PromQL selecting each kind of series, what it grows with)
    # Recorded series keep the job label; their names have colons, scraped ones do not.
    "exporter, per GPU": ('{job="gpu-exporter", gpu!="", __name__!~".*:.*"}', "gpu"),
    "exporter, per host (self-health, up, scrape_*)": ('{job="gpu-exporter", gpu="", __name__!~".*:.*"}', "host"),
    "recording rules gpu:": ('{__name__=~"gpu:.+"}', "gpu"),
    "recording rules host:": ('{__name__=~"host:.+"}', "host"),
    "inventory": ('{__name__="gpuobs_inventory_expected_gpus"}', "host"),
    "recording rules cluster:": ('{__name__=~"cluster:.+"}', "cluster"),
    "recording rules fleet:": ('{__name__=~"fleet:.+"}', "fleet"),
    "recording rules workload:": ('{__name__=~"workload:.+"}', "workload"),
}
PROCESS_CAP = 10  # gpuobs-exporter's default --process-metrics.max-per-gpu


def count(prom: PrometheusServer, selector: str) -> int:
    result = prom.query(f"count({selector})")
    return int(float(result[0]["value"][1])) if result else 0


def cluster_tier(workloads: bool, timeout: float = 120) -> tuple[int, dict[str, int], int]:
    """(GPUs, series per kind, workloads: namespaces and HPC jobs holding GPUs)."""
    spec = ROOT / "specs" / "demo.yaml"
    source = ROOT / "generated" / "demo" / "prometheus"
    layouts = [dataclasses.replace(layout, pods=workloads, hpc_jobs=workloads)
               for layout in from_spec(spec, base_port=0)]
    gpus = sum(layout.gpus for layout in layouts)
    simulation = Simulation(Fleet(layouts, seed=1, epoch=time.time()), SimClock(), interval=0.2).start()
    try:
        config = yaml.safe_load((source / "prometheus.yml").read_text())
        factor = 1 / seconds(config["global"]["evaluation_interval"])
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "gpu-exporter"]
        config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{e.port}"
                                                                       for e in simulation.endpoints]
        config["alerting"] = {"alertmanagers": []}
        with tempfile.TemporaryDirectory() as tmp:
            # The rule groups' own intervals on the same faster clock, so the tiers keep their ratios.
            config["rule_files"] = []
            for name in yaml.safe_load((source / "prometheus.yml").read_text())["rule_files"]:
                document = yaml.safe_load((source / name).read_text())
                for group in document["groups"]:
                    if "interval" in group:
                        group["interval"] = f"{max(1, round(seconds(group['interval']) * factor))}s"
                copy = Path(tmp) / name.replace("/", "_")
                copy.write_text(yaml.safe_dump(document))
                config["rule_files"].append(str(copy))
            path = Path(tmp) / "prometheus.yml"
            path.write_text(yaml.safe_dump(config))
            with PrometheusServer(path) as prom:
                # Settled: every group has run on data, the top-ten rules hold every GPU, and the counts
                # held for two intervals of the slowest group (each group first runs at an offset of its own).
                settle = 2 * max(seconds(g.get("interval", "1s")) for f in config["rule_files"]
                                 for g in yaml.safe_load(Path(f).read_text())["groups"])
                deadline = time.monotonic() + timeout
                counts: dict[str, int] = {}
                since = time.monotonic()
                while time.monotonic() < deadline:
                    previous, counts = counts, {kind: count(prom, s) for kind, (s, _) in KINDS.items()}
                    if counts != previous:
                        since = time.monotonic()
                    ready = prom.query(f"fleet:gpus_healthy:count == {gpus}") and prom.query("cluster:gpu_cost:sum")
                    if ready and time.monotonic() - since >= settle:
                        return gpus, counts, count(prom, "workload:gpus_allocated:sum")
                    time.sleep(1)
                raise RuntimeError(f"series counts did not settle in {timeout}s: {counts}")
    finally:
        simulation.stop()


def process_series(processes: int) -> int:
    """Series the exporter serves for one GPU running `processes` processes."""
    out = Builder()
    running = [_Process(pid, None, memory=(pid + 1) << 20, sm=5) for pid in range(processes)]
    Processes(PROCESS_CAP)._emit(out, (0, None), gpu_entity(0, "GPU-0", "00000000:07:00.0", "NVIDIA A100", "h"),
                                 running)
    return sum(1 for line in out.render().decode().splitlines() if line and not line.startswith("#"))


def global_tier(hosts: int, clusters: int, gpus_per_host: int) -> dict:
    spec = {
        "name": "cardinality",
        "clusters": [{"name": f"c{i}", "prometheus": {"address": f"prom-c{i}:9090"}} for i in range(clusters)],
        "hosts": [{"name": f"h{i:05d}", "cluster": f"c{i % clusters}", "address": f"10.{i // 65536}.{i // 256 % 256}."
                   f"{i % 256}", "gpus": {"model": "A100-SXM4-80GB", "count": gpus_per_host}} for i in range(hosts)],
        "global": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cardinality.yaml"
        path.write_text(yaml.safe_dump(spec))
        model = load_model(path)
    files = render(model)
    federated = set(federated_names(model))
    gpus_per_cluster = hosts * gpus_per_host // clusters
    per_cluster = 0
    for group in yaml.safe_load(files[RECORDING_RULES])["groups"]:
        for rule in group["rules"]:
            if rule.get("record") not in federated or "severity)" in rule["expr"]:
                continue
            top = re.match(r"(topk|bottomk) by \(cluster\) \((\d+),", rule["expr"])
            per_cluster += min(int(top.group(2)), gpus_per_cluster) if top else 1
    own = [r for path in (GLOBAL_INVENTORY, FLEET_RULES)
           for g in yaml.safe_load(files[path])["groups"] for r in g["rules"]]
    severities = len({a.severity for a in model.alerts})
    return {"gpus": hosts * gpus_per_host, "clusters": clusters, "federated match[]": len(federated),
            "per cluster": per_cluster, "severities": severities, "global rules": len(own),
            "total": clusters * per_cluster + len(own), "total with alerts": clusters * (per_cluster + severities)
            + len(own)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1250)
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--gpus-per-host", type=int, default=8)
    args = parser.parse_args()

    grows = {}
    for workloads in (False, True):
        gpus, counts, held_by = cluster_tier(workloads)
        attribution = "pods and HPC jobs on every GPU" if workloads else "no workload attribution"
        print(f"Cluster tier, measured (specs/demo.yaml: {gpus} x A100 on one host, simulator, Prometheus 2.42), "
              f"{attribution}:")
        for kind, n in counts.items():
            print(f"  {kind:<48} {n:>5}")
        grows = {scale: sum(n for kind, n in counts.items() if KINDS[kind][1] == scale)
                 for scale in ("gpu", "host", "workload")}
        exporter = counts["exporter, per GPU"] / gpus
        print(f"  per GPU: {exporter:.1f} exporter + {counts['recording rules gpu:'] / gpus:.1f} recording = "
              f"{grows['gpu'] / gpus:.1f} series; per host {grows['host']} more; per cluster "
              f"{counts['recording rules cluster:']} (with {gpus} GPUs), per fleet {counts['recording rules fleet:']}"
              f"; {grows['workload']} per-workload series for {held_by} workloads (namespace and HPC job pairs)")
    print(f"\nPer-process series (--process-metrics, cap {PROCESS_CAP}), per GPU:")
    for processes in (0, 1, 4, PROCESS_CAP, 50):
        print(f"  {processes:>3} processes: {process_series(processes):>3} series")

    g = global_tier(args.hosts, args.clusters, args.gpus_per_host)
    hosts = args.hosts
    cluster_tier_total = g["gpus"] * grows["gpu"] // gpus + hosts * grows["host"]
    print(f"\nGlobal tier, from the generated rules ({g['gpus']:,} GPUs: {hosts:,} hosts x "
          f"{args.gpus_per_host} over {g['clusters']} clusters):")
    print(f"  federated per cluster: {g['per cluster']} series from {g['federated match[]']} match[] selectors "
          f"(+1 per severity with alerts firing, up to {g['severities']})")
    print(f"  global rules (inventory per cluster, fleet): {g['global rules']}")
    print(f"  total: {g['total']} series ({g['total with alerts']} with every severity firing); the cluster tier "
          f"holds about {cluster_tier_total:,} for the same fleet")

if __name__ == "__main__":
    main()
