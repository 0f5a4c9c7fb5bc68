"""specs/fleet.yaml's Prometheus servers, as generated, on 127.0.0.1: each cluster's Prometheus
scrapes a simulator of its own hosts, the global Prometheus federates them, and the fleet
overview's queries return both clusters there; infer-west's Prometheus remote_writes into a
Prometheus that receives it.

The generated tree is copied and only addresses, ports and intervals are changed: the exporters'
targets in the file_sd files, the federation targets, the remote_write URL (and its password
file), 1 s scrape and evaluation intervals.
"""

import contextlib
import json
import re
import shutil
import time

import pytest
import yaml

from conftest import ROOT, faster_rule_file, needs, wait_for
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import from_spec
from exporters.simulator.runtime import SimClock, Simulation
from gpuobs.generate import load_model
from gpuobs.generators.federation import FEDERATE_JOB
from gpuobs.generators.grafana import all_queries
from gpuobs.generators.prometheus import config_name
from gpuobs.generators.rules import TEMPERATURE_BUCKETS, TOP_GPUS, expected_gpus, federated_names
from gpuobs.promql import seconds
from gpuobs.stack import PrometheusServer

pytestmark = [needs("prometheus"), pytest.mark.slow]

SPEC = ROOT / "specs" / "fleet.yaml"
GENERATED = ROOT / "generated" / "fleet"
FAST = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}



def value(prom, query: str) -> float:
    return float(wait_for(prom, query, 30)[0]["value"][1])


@contextlib.contextmanager
def simulators(clusters):
    """One simulator per cluster, every host on a free port: {host: port}."""
    layouts = from_spec(SPEC, base_port=0)
    running = []
    try:
        for cluster in clusters:
            fleet = Fleet([h for h in layouts if h.cluster == cluster], seed=7, epoch=time.time())
            running.append(Simulation(fleet, SimClock(), interval=0.2).start())
        yield {e.hosts[0].layout.name: e.port for s in running for e in s.endpoints}, running
    finally:
        for simulation in running:
            simulation.stop()


def cluster_config(folder, replica, ports, receiver_url, password_file) -> dict:
    """A cluster's generated configuration, pointed at the simulator and the receiver."""
    targets = folder / "file_sd" / "gpu-exporter.yml"
    groups = yaml.safe_load(targets.read_text())
    for group in groups:
        group["targets"] = [f"127.0.0.1:{ports[group['labels']['host']]}"]
    targets.write_text(yaml.safe_dump(groups))
    config = yaml.safe_load((folder / config_name(replica)).read_text())
    config["global"].update(FAST)
    # No node-exporters, Alertmanager or self-scrape here: only the GPU exporters.
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "gpu-exporter"]
    config["alerting"]["alertmanagers"] = []
    for endpoint in config.get("remote_write", []):
        endpoint["url"] = f"{receiver_url}/api/v1/write"
        endpoint["basic_auth"]["password_file"] = str(password_file)
        endpoint["queue_config"]["batch_send_deadline"] = "1s"
    return config


def for_cluster(expr: str, cluster: str) -> str:
    """A dashboard query as Grafana sends it with one cluster selected."""
    expr = expr.replace("$cluster", cluster)
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr, flags=re.S)
    return f"count by ({match.group(2)}) ({match.group(1)})" if match else expr


def test_global_tier_federates_both_clusters_and_remote_write_delivers(tmp_path):
    model = load_model(SPEC)
    tree = tmp_path / "prometheus"
    shutil.copytree(GENERATED / "prometheus", tree)
    factor = 1 / seconds(model.prometheus.evaluation_interval)  # the generated tiers on the 1 s clock
    for rules in tree.glob("**/rules/*.yml"):
        faster_rule_file(rules, rules, factor)
    password = tmp_path / "remote-write-password"
    password.write_text("not-checked-by-the-receiver\n")
    receiver_config = tmp_path / "receiver.yml"
    receiver_config.write_text(yaml.safe_dump({"global": FAST}))
    clusters = [s.cluster for s in model.servers]
    expected = expected_gpus(model)

    with contextlib.ExitStack() as stack:
        ports, running = stack.enter_context(simulators(clusters))
        receiver = stack.enter_context(PrometheusServer(receiver_config, remote_write_receiver=True))
        cluster_urls = {}
        for server in model.servers:
            folder = tree / "clusters" / server.cluster
            replica = server.replicas[0] if server.replicas else None
            path = folder / config_name(replica)
            path.write_text(yaml.safe_dump(cluster_config(folder, replica, ports, receiver.url, password)))
            cluster_urls[server.cluster] = stack.enter_context(PrometheusServer(path)).url
        config = yaml.safe_load((tree / "global" / "prometheus.yml").read_text())
        config["global"].update(FAST)
        config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == FEDERATE_JOB]
        for group in config["scrape_configs"][0]["static_configs"]:
            group["targets"] = [cluster_urls[group["labels"]["cluster"]].removeprefix("http://")]
        (tree / "global" / "prometheus.yml").write_text(yaml.safe_dump(config))
        top = stack.enter_context(PrometheusServer(tree / "global" / "prometheus.yml"))

        # The fleet overview, on the global tier: every query, with each cluster selected.
        assert value(top, f"fleet:gpus:count == {sum(expected.values())}") == sum(expected.values())
        assert value(top, "fleet:gpus_expected:count") == sum(expected.values())
        overview = json.loads((GENERATED / "grafana" / "dashboards" / "fleet-overview.json").read_text())
        queries = all_queries(overview)
        assert len(queries) >= 13
        for cluster in clusters:
            for where, expr in queries:
                assert wait_for(top, for_cluster(expr, cluster)), where
            assert value(top, f'cluster:gpus:count{{cluster="{cluster}"}}') == expected[cluster]
        listed = wait_for(top, for_cluster(dict(queries)[f"{overview['title']} / $cluster"], ""))
        assert {r["metric"]["cluster"] for r in listed} == set(clusters)

        # Only cluster-level series cross: a fixed number per cluster, none per GPU.
        fanned_out = {"cluster:gpu_temperature_celsius:bucket": len(TEMPERATURE_BUCKETS) + 1,
                      f"cluster:gpu_temperature_celsius:top{TOP_GPUS}": TOP_GPUS,
                      f"cluster:gpu_health_score:bottom{TOP_GPUS}": TOP_GPUS,
                      "cluster:alerts_firing:count": 0}  # one per severity firing; none yet
        per_cluster = sum(fanned_out.get(name, 1) for name in federated_names(model))
        # (by name: honor_labels keeps the job label of a top-10 GPU's own series)
        names = "|".join(re.escape(n) for n in federated_names(model))
        # (waited for: a cluster's top ten fill up as its GPUs' rules produce their first values)
        settled = f'count(count by (cluster) ({{__name__=~"{names}"}}) == {per_cluster}) == {len(clusters)}'
        assert value(top, settled) == len(clusters)
        assert not top.query('{__name__=~"gpu:.+|DCGM_.+"}')
        assert not top.query("{replica!=\"\"}"), "the HA pair's replica label is dropped"

        # An alert at the cluster tier shows in the global tier's counts.
        west = running[clusters.index("infer-west")].fleet
        west.start_fault("row-remap-failure", "h100-west-01", 5)
        assert value(top, "fleet:gpus_alerting:count == 1") == 1
        by_severity = next(e for w, e in queries if "by severity" in w)
        firing = wait_for(top, f"({for_cluster(by_severity, 'infer-west')}) > 0")
        assert [(r["metric"]["severity"], float(r["value"][1])) for r in firing] == [("critical", 1)]

        # remote_write: infer-west's GPU series, raw and recorded, with its external labels.
        arrived = wait_for(receiver, f'count(gpu:temperature:celsius) == {expected["infer-west"]}')
        assert float(arrived[0]["value"][1]) == expected["infer-west"]
        raw = wait_for(receiver, "DCGM_FI_DEV_GPU_TEMP")
        assert {r["metric"]["host"] for r in raw} == {"h100-west-01", "a100-west-mig-01"}
        assert {(r["metric"]["cluster"], r["metric"]["fleet"]) for r in raw} == {("infer-west", "example")}
        assert not receiver.query('{cluster="train-east"}'), "train-east has no remote_write"
