"""Series counts: per GPU at the cluster tier, and what the global tier carries for a large fleet.

    python benchmarks/cardinality.py                       # 10,000 GPUs: 1,250 hosts x 8 over 4 clusters
    python benchmarks/cardinality.py --hosts 2500 --clusters 8

Cluster tier, measured: the simulator serves specs/demo.yaml (one host, 8 x A100) to a real
Prometheus running the generated rules of generated/demo (1 s intervals); once every rule group
has produced its series, the series are counted by kind. The simulator serves what gpuobs'
exporter serves; dcgm-exporter's set differs with its counters CSV.

Global tier, computed from the generated rules of a spec of the given size with a global tier:
per cluster, one series per federated cluster-level rule (the histogram has one rule per bucket),
ten for each top-ten rule, and one per severity while alerts of that severity fire; then the
global tier's own inventory and fleet rules. tests/test_federation_live.py counts the same per
cluster on a real global Prometheus.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
}


def count(prom: PrometheusServer, selector: str) -> int:
    result = prom.query(f"count({selector})")
    return int(float(result[0]["value"][1])) if result else 0


def cluster_tier(timeout: float = 60) -> tuple[int, dict[str, int]]:
    spec = ROOT / "specs" / "demo.yaml"
    source = ROOT / "generated" / "demo" / "prometheus"
    layouts = from_spec(spec, base_port=0)
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
                # Settled: every group has run on data, the top-ten rules hold every GPU.
                deadline = time.monotonic() + timeout
                counts: dict[str, int] = {}
                while time.monotonic() < deadline:
                    previous, counts = counts, {kind: count(prom, s) for kind, (s, _) in KINDS.items()}
                    if counts == previous and prom.query(f"fleet:gpus_healthy:count == {gpus}"):
                        return gpus, counts
                    time.sleep(2)
                raise RuntimeError(f"series counts did not settle in {timeout}s: {counts}")
    finally:
        simulation.stop()


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

    gpus, counts = cluster_tier()
    print(f"Cluster tier, measured (specs/demo.yaml: {gpus} x A100 on one host, simulator, Prometheus 2.42):")
    for kind, n in counts.items():
        print(f"  {kind:<48} {n:>5}")
    grows = {scale: sum(n for kind, n in counts.items() if KINDS[kind][1] == scale) for scale in ("gpu", "host")}
    exporter = counts["exporter, per GPU"] / gpus
    print(f"  per GPU: {exporter:.1f} exporter + {counts['recording rules gpu:'] / gpus:.1f} recording = "
          f"{grows['gpu'] / gpus:.1f} series; per host {grows['host']} more; per cluster "
          f"{counts['recording rules cluster:']} (with {gpus} GPUs), per fleet {counts['recording rules fleet:']}")

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
