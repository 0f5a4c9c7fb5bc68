"""Invalid specs: every problem is reported with its exact path and a message a user can act on.

Each case starts from BASE (one cluster, one host with 8 x A100-SXM4-80GB), applies one change,
writes the result as YAML and expects exactly one problem at an exact path.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gpuobs.cli import main
from gpuobs.errors import SpecError
from gpuobs.spec import load_spec

MODEL = "A100-SXM4-80GB"
BASE = {
    "version": 1,
    "clusters": [{"name": "c1"}],
    "hosts": [{"name": "h1", "cluster": "c1", "gpus": {"model": MODEL, "count": 8}}],
}
FLEET_KEYS = ("version, name, gpu_models, clusters, hosts, teams, thresholds, alerts, prometheus, alertmanager, "
              "grafana, links, global, kubernetes, rules, efficiency")
HOST_KEYS = "name, cluster, address, exporter, exporter_port, node_exporter_port, labels, gpus"
PROMETHEUS_KEYS = ("scrape_interval, scrape_timeout, evaluation_interval, retention, service_discovery, "
                   "host_label, self_address, alertmanagers, external_labels, exporter_stale_after")


def base() -> dict:
    return copy.deepcopy(BASE)


def write_yaml(tmp_path: Path, data, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_text(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path):
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.source == str(path)
    return info.value.problems


def problems_after(tmp_path: Path, change):
    """The problems of BASE with `change` applied."""
    data = base()
    change(data)
    return problems_of(write_yaml(tmp_path, data))


# --- mutations: each takes the base dict and changes one thing -------------------------------------

def host(d, i=0):
    return d["hosts"][i]


def gpus(d, i=0):
    return d["hosts"][i]["gpus"]


def add_host(d, name="h2", **extra):
    entry = {"name": name, "cluster": "c1", "gpus": {"model": MODEL, "count": 8}}
    entry.update(extra)
    d["hosts"].append(entry)
    return entry


def set_second_host_model(d):
    add_host(d)["gpus"]["model"] = "A100"


def set_mig(model, count, profiles, gpu_indices=None):
    def change(d):
        gpus(d).update(model=model, count=count)
        gpus(d)["mig"] = {"profiles": profiles}
        if gpu_indices is not None:
            gpus(d)["mig"]["gpus"] = gpu_indices
    return change


def set_thresholds(model, **values):
    return lambda d: d.setdefault("thresholds", {}).__setitem__(model, values)


def set_alert(name, **values):
    return lambda d: d.setdefault("alerts", {}).__setitem__(name, values)


def set_prometheus(**values):
    return lambda d: d.setdefault("prometheus", {}).update(values)


def set_efficiency(**values):
    return lambda d: d.__setitem__("efficiency", {"currency": "EUR", **values})


def set_teams(*teams):
    return lambda d: d.__setitem__("teams", list(teams))


A100_80_PROFILES = "1g.10gb, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb"

# (id, change, exact path, fragments the message must contain)
CASES = [
    # --- GPU model, unknown keys
    ("unknown-gpu-model", set_second_host_model, "hosts[1].gpus.model",
     ["unknown GPU model 'A100'", "known: A100-SXM4-80GB, A100-SXM4-40GB", "H100-SXM5-80GB", "L40S"]),
    ("unknown-key-top-level", lambda d: d.update(colour="blue"), "colour",
     [f"unknown key 'colour'; allowed: {FLEET_KEYS}"]),
    ("unknown-key-near-a-top-level-key", lambda d: d.update(hostz=[]), "hostz",
     ["unknown key 'hostz'; did you mean 'hosts'?"]),
    ("unknown-key-cluster", lambda d: d["clusters"][0].update(region="east"), "clusters[0].region",
     ["unknown key 'region'; allowed: name, labels"]),
    ("unknown-key-host", lambda d: host(d).update(rack="r01"), "hosts[0].rack",
     [f"unknown key 'rack'; allowed: {HOST_KEYS}"]),
    ("unknown-key-near-a-host-key", lambda d: host(d).update(adress="10.0.0.1"), "hosts[0].adress",
     ["unknown key 'adress'; did you mean 'address'?"]),
    ("unknown-key-gpus", lambda d: gpus(d).update(memory="80GB"), "hosts[0].gpus.memory",
     ["unknown key 'memory'; allowed: model, count, mig"]),
    ("unknown-key-mig", lambda d: gpus(d).update(mig={"profiles": ["7g.80gb"], "gpu": [0]}),
     "hosts[0].gpus.mig.gpu", ["unknown key 'gpu'; did you mean 'gpus'?"]),
    ("unknown-key-thresholds-model", set_thresholds(MODEL, gpu_temp_warn=80),
     f"thresholds.{MODEL}.gpu_temp_warn",
     ["unknown key 'gpu_temp_warn'; did you mean 'gpu_temp_warning'?"]),
    ("unknown-key-alert", set_alert("GPUThermalWarning", duration="5m"), "alerts.GPUThermalWarning.duration",
     ["unknown key 'duration'; allowed: enabled, severity, for, labels"]),
    ("unknown-key-prometheus", set_prometheus(scrape_intervall="30s"), "prometheus.scrape_intervall",
     ["unknown key 'scrape_intervall'; did you mean 'scrape_interval'?"]),
    ("unknown-key-prometheus-far-from-any", set_prometheus(storage="/data"), "prometheus.storage",
     [f"unknown key 'storage'; allowed: {PROMETHEUS_KEYS}"]),
    # --- required keys, types, ranges
    ("missing-clusters", lambda d: d.pop("clusters"), "clusters", ["required key missing"]),
    ("missing-hosts", lambda d: d.pop("hosts"), "hosts", ["required key missing"]),
    ("missing-host-cluster", lambda d: host(d).pop("cluster"), "hosts[0].cluster", ["required key missing"]),
    ("missing-gpu-count", lambda d: gpus(d).pop("count"), "hosts[0].gpus.count", ["required key missing"]),
    ("empty-clusters", lambda d: d.update(clusters=[]), "clusters", ["must list at least one item"]),
    ("hosts-not-a-list", lambda d: d.update(hosts="h1"), "hosts", ["must be a list; got 'h1'"]),
    ("count-not-an-integer", lambda d: gpus(d).update(count="eight"), "hosts[0].gpus.count",
     ["must be a whole number; got 'eight'"]),
    ("count-zero", lambda d: gpus(d).update(count=0), "hosts[0].gpus.count",
     ["must be at least 1; got the number 0"]),
    ("count-65", lambda d: gpus(d).update(count=65), "hosts[0].gpus.count",
     ["must be at most 64; got the number 65"]),
    ("exporter-port-out-of-range", lambda d: host(d).update(exporter_port=70000), "hosts[0].exporter_port",
     ["must be at most 65535; got the number 70000"]),
    ("unsupported-version", lambda d: d.update(version=2), "version", ["must be 1; got the number 2"]),
    ("unknown-exporter-kind", lambda d: d["clusters"][0].update(exporter={"kind": "nvml"}),
     "clusters[0].exporter.kind", ["must be 'gpuobs', 'dcgm-exporter' or 'nvidia_gpu_exporter'; got 'nvml'"]),
    ("exporter-kind-misspelt", lambda d: d["clusters"][0].update(exporter={"kind": "dcgm_exporter"}),
     "clusters[0].exporter.kind", ["got 'dcgm_exporter'; did you mean 'dcgm-exporter'?"]),
    ("unknown-dcgm-field", lambda d: d["clusters"][0].update(exporter={
        "kind": "dcgm-exporter", "counters": ["DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_ECC_DBE_VOLL_TOTAL"]}),
     "clusters[0].exporter.counters[1]", ["'DCGM_FI_DEV_ECC_DBE_VOLL_TOTAL' is not a DCGM field",
                                          "did you mean DCGM_FI_DEV_ECC_DBE_VOL_TOTAL?"]),
    ("counters-for-gpuobs-exporter", lambda d: d["clusters"][0].update(exporter={"counters": "default"}),
     "clusters[0].exporter.counters", ["counters apply to dcgm-exporter only, not gpuobs"]),
    ("host-exporter-version-for-nvidia-gpu-exporter", lambda d: host(d).update(
        exporter={"kind": "nvidia_gpu_exporter", "version": 3}),
     "hosts[0].exporter.version", ["version applies to dcgm-exporter only, not nvidia_gpu_exporter"]),
    ("user-model-thresholds-in-the-wrong-order", lambda d: d.update(gpu_models=[{
        "name": "a800-pcie", "nvml_name": "NVIDIA A800 80GB PCIe", "power_limit_watts": 300,
        "gpu_temp_warning": 90, "gpu_temp_critical": 85, "memory_mib": 81920}]),
     "gpu_models[0].gpu_temp_warning", ["gpu_temp_warning must be below gpu_temp_critical (given: 90 and 85)"]),
    ("user-model-without-an-nvml-name", lambda d: d.update(gpu_models=[{
        "name": "a800-pcie", "power_limit_watts": 300, "gpu_temp_warning": 80, "gpu_temp_critical": 85,
        "memory_mib": 81920}]),
     "gpu_models[0]", ["give nvml_name (the name NVML reports) or nvml_pattern"]),
    ("user-model-pattern-not-matching-its-name", lambda d: d.update(gpu_models=[{
        "name": "a800-pcie", "nvml_name": "NVIDIA A800 80GB PCIe", "nvml_pattern": "NVIDIA A800-SXM.*",
        "power_limit_watts": 300, "gpu_temp_warning": 80, "gpu_temp_critical": 85, "memory_mib": 81920}]),
     "gpu_models[0].nvml_pattern", ["does not match its own nvml_name 'NVIDIA A800 80GB PCIe'"]),
    ("user-model-shadowing-a-built-in", lambda d: d.update(gpu_models=[{
        "name": "L40S", "nvml_name": "NVIDIA L40S", "power_limit_watts": 300, "gpu_temp_warning": 80,
        "gpu_temp_critical": 85, "memory_mib": 46068}]),
     "gpu_models[0].name", ["'L40S' is a built-in model"]),
    ("user-model-bad-power", lambda d: d.update(gpu_models=[{
        "name": "x1", "nvml_name": "X1", "power_limit_watts": -5, "gpu_temp_warning": 80,
        "gpu_temp_critical": 85, "memory_mib": 1024}]),
     "gpu_models[0].power_limit_watts", ["must be greater than 0; got the number -5"]),
    ("bad-service-discovery", set_prometheus(service_discovery="consul"), "prometheus.service_discovery",
     ["must be 'static' or 'file_sd'; got 'consul'"]),
    ("label-value-not-a-string", lambda d: d["clusters"][0].update(labels={"region": 1}),
     "clusters[0].labels.region", ["must be text; YAML reads 1 as the number 1; write '1' in quotes"]),
    # --- durations, label names, reserved labels, names and addresses
    ("alert-for-not-a-duration", set_alert("GPUThermalWarning", **{"for": "5minutes"}),
     "alerts.GPUThermalWarning.for", ["'5minutes' is not a Prometheus duration", "e.g. 30s, 5m, 1h30m"]),
    ("scrape-interval-not-a-duration", set_prometheus(scrape_interval="15 s"), "prometheus.scrape_interval",
     ["'15 s' is not a Prometheus duration"]),
    ("retention-not-a-duration", set_prometheus(retention="30days"), "prometheus.retention",
     ["'30days' is not a Prometheus duration"]),
    ("threshold-horizon-not-a-duration", set_thresholds(MODEL, thermal_prediction_horizon="1.5h"),
     f"thresholds.{MODEL}.thermal_prediction_horizon", ["'1.5h' is not a Prometheus duration"]),
    # A bad label *name* is a dict-key error: the path points at the key itself.
    ("label-name-with-dash", lambda d: host(d).update(labels={"rack-id": "r01"}),
     "hosts[0].labels.rack-id", ["'rack-id' is not a valid label name"]),
    ("label-name-dunder", lambda d: d["clusters"][0].update(labels={"__meta": "x"}),
     "clusters[0].labels.__meta", ["'__meta' is not a valid label name", "not starting with a digit or __"]),
    ("label-name-leading-digit", set_prometheus(external_labels={"1dc": "x"}),
     "prometheus.external_labels.1dc", ["'1dc' is not a valid label name"]),
    ("host-label-not-a-label-name", set_prometheus(host_label="host-name"), "prometheus.host_label",
     ["'host-name' is not a valid label name"]),
    ("reserved-host-label-cluster", lambda d: host(d).update(labels={"cluster": "other"}),
     "hosts[0].labels.cluster", ["label 'cluster' is set by gpuobs itself; choose another name"]),
    ("reserved-host-label-severity", lambda d: host(d).update(labels={"severity": "high"}),
     "hosts[0].labels.severity", ["label 'severity' is set by gpuobs itself"]),
    ("reserved-cluster-label-host", lambda d: d["clusters"][0].update(labels={"host": "x"}),
     "clusters[0].labels.host", ["label 'host' is set by gpuobs itself"]),
    ("reserved-custom-host-label", lambda d: (d.update(prometheus={"host_label": "node"}),
                                              host(d).update(labels={"node": "x"})),
     "hosts[0].labels.node", ["label 'node' is set by gpuobs itself"]),
    ("reserved-alert-label-team", set_alert("GPUThermalCritical", labels={"team": "ops"}),
     "alerts.GPUThermalCritical.labels.team", ["label 'team' is set by gpuobs itself"]),
    ("host-name-upper-case", lambda d: host(d).update(name="GPU-Node-01"), "hosts[0].name",
     ["'GPU-Node-01' is not a valid name", "lower-case letters"]),
    ("host-name-too-long", lambda d: host(d).update(name="h" * 64), "hosts[0].name", ["is not a valid name"]),
    ("cluster-name-with-space", lambda d: d["clusters"][0].update(name="c 1"),
     "clusters[0].name", ["'c 1' is not a valid name"]),
    ("host-name-not-a-string", lambda d: host(d).update(name=101), "hosts[0].name",
     ["must be text; YAML reads 101 as the number 101; write '101' in quotes"]),
    ("address-with-scheme", lambda d: host(d).update(address="http://10.0.0.1"), "hosts[0].address",
     ["'http://10.0.0.1' is not a host name or IP address (no scheme, no port: set exporter_port)"]),
    ("address-with-port", lambda d: host(d).update(address="10.0.0.1:9400"), "hosts[0].address",
     ["'10.0.0.1:9400' is not a host name or IP address"]),
    ("address-with-path", lambda d: host(d).update(address="node1/metrics"), "hosts[0].address",
     ["'node1/metrics' is not a host name or IP address"]),
    ("links-url-without-scheme", lambda d: d.update(links={"grafana_url": "grafana:3000"}), "links.grafana_url",
     ["'grafana:3000' is not an http(s) URL"]),
    # --- references and duplicates
    ("host-in-unknown-cluster", lambda d: host(d).update(cluster="c2"), "hosts[0].cluster",
     ["unknown cluster 'c2'; known: c1"]),
    ("duplicate-host-name", lambda d: add_host(d, name="h1", address="10.0.0.2"), "hosts[1].name",
     ["duplicate host name 'h1'"]),
    ("duplicate-cluster-name", lambda d: d["clusters"].append({"name": "c1"}), "clusters[1].name",
     ["duplicate cluster name 'c1'"]),
    ("duplicate-exporter-endpoint-address", lambda d: (host(d).update(address="10.0.0.1"),
                                                        add_host(d, address="10.0.0.1")),
     "hosts[1].exporter_port", ["exporter endpoint 10.0.0.1:9400 is already used by another host"]),
    ("duplicate-exporter-endpoint-default-address", lambda d: add_host(d, address="h1"),
     "hosts[1].exporter_port", ["exporter endpoint h1:9400 is already used by another host"]),
    # --- teams
    ("team-unknown-cluster", set_teams({"name": "ml", "clusters": ["c9"]}), "teams[0].clusters[0]",
     ["unknown cluster 'c9'; known: c1"]),
    ("team-unknown-host", set_teams({"name": "ml", "hosts": ["h9"]}), "teams[0].hosts[0]",
     ["unknown host 'h9'"]),
    ("team-owns-nothing", set_teams({"name": "ml"}), "teams[0]",
     ["a team must own at least one cluster or host"]),
    ("host-owned-by-two-teams", set_teams({"name": "ml", "clusters": ["c1"]}, {"name": "infra", "hosts": ["h1"]}),
     "teams[1]", ["host 'h1' is already owned by team 'ml'; a host has one owner"]),
    ("duplicate-team-name", set_teams({"name": "ml", "clusters": ["c1"]}, {"name": "ml", "hosts": ["h1"]}),
     "teams[1].name", ["duplicate team name 'ml'"]),
    ("team-name-invalid", set_teams({"name": "ML Team", "clusters": ["c1"]}), "teams[0].name",
     ["'ML Team' is not a valid name"]),
    # --- MIG
    ("mig-on-a10", set_mig("A10", 1, ["1g.10gb"]), "hosts[0].gpus.mig", ["A10 does not support MIG"]),
    ("mig-on-l40s", set_mig("L40S", 4, ["1g.10gb"]), "hosts[0].gpus.mig", ["L40S does not support MIG"]),
    ("mig-unknown-profile", set_mig(MODEL, 8, ["3g.40gb", "3g.20gb"]), "hosts[0].gpus.mig.profiles[1]",
     [f"unknown MIG profile '3g.20gb' for {MODEL}; known: {A100_80_PROFILES}"]),
    ("mig-too-many-compute-slices", set_mig(MODEL, 8, ["4g.40gb", "4g.40gb"]), "hosts[0].gpus.mig.profiles",
     ["layout needs 8/7 compute and 8/8 memory slices; it does not fit on one GPU"]),
    ("mig-too-many-memory-slices", set_mig(MODEL, 8, ["1g.20gb"] * 5), "hosts[0].gpus.mig.profiles",
     ["layout needs 5/7 compute and 10/8 memory slices"]),
    ("mig-gpu-index-out-of-range", set_mig(MODEL, 8, ["7g.80gb"], [0, 8]), "hosts[0].gpus.mig.gpus[1]",
     ["GPU index 8 is out of range; the host has 8 GPUs (0-7)"]),
    ("mig-gpu-index-negative", set_mig(MODEL, 8, ["7g.80gb"], [-1]), "hosts[0].gpus.mig.gpus[0]",
     ["must be at least 0; got the number -1"]),
    ("mig-no-profiles", set_mig(MODEL, 8, []), "hosts[0].gpus.mig.profiles", ["must list at least one item"]),
    # --- thresholds
    ("thresholds-unknown-model", set_thresholds("A100", gpu_temp_warning=80), "thresholds.A100",
     ["unknown GPU model 'A100'; known: A100-SXM4-80GB"]),
    ("thresholds-model-not-in-fleet", set_thresholds("H100-SXM5-80GB", memory_used_warning_ratio=0.97),
     "thresholds.H100-SXM5-80GB", ["no host has H100-SXM5-80GB GPUs; thresholds for it would never apply"]),
    ("gpu-temp-warning-equals-critical", set_thresholds(MODEL, gpu_temp_warning=85, gpu_temp_critical=85),
     f"thresholds.{MODEL}.gpu_temp_warning",
     ["must be below gpu_temp_critical (in force: gpu_temp_warning=85, gpu_temp_critical=85)"]),
    ("gpu-temp-warning-above-critical", set_thresholds(MODEL, gpu_temp_warning=90, gpu_temp_critical=85),
     f"thresholds.{MODEL}.gpu_temp_warning",
     ["must be below gpu_temp_critical (in force: gpu_temp_warning=90, gpu_temp_critical=85)"]),
    ("warning-above-the-models-default-critical", set_thresholds(MODEL, gpu_temp_warning=90),
     f"thresholds.{MODEL}.gpu_temp_warning", ["in force: gpu_temp_warning=90, gpu_temp_critical=85"]),
    ("power-ratio-above-the-default-critical", set_thresholds(MODEL, power_warning_ratio=1.5),
     f"thresholds.{MODEL}.power_warning_ratio", ["power_warning_ratio must be below power_critical_ratio"]),
    ("power-warning-above-critical", set_thresholds(MODEL, power_warning_ratio=1.2, power_critical_ratio=1.1),
     f"thresholds.{MODEL}.power_warning_ratio", ["must be below power_critical_ratio"]),
    ("margin-warning-equals-critical", set_thresholds(MODEL, gpu_temp_margin_warning=0, gpu_temp_margin_critical=0),
     f"thresholds.{MODEL}.gpu_temp_margin_warning", ["must be above (a margin shrinks as the GPU heats up) "
                                                     "gpu_temp_margin_critical"]),
    ("margin-warning-below-critical", set_thresholds(MODEL, gpu_temp_margin_warning=2, gpu_temp_margin_critical=5),
     f"thresholds.{MODEL}.gpu_temp_margin_warning", ["a margin shrinks as the GPU heats up"]),
    ("threshold-temp-out-of-range", set_thresholds(MODEL, gpu_temp_critical=200),
     f"thresholds.{MODEL}.gpu_temp_critical", ["must be at most 150; got the number 200"]),
    ("threshold-ratio-zero", set_thresholds(MODEL, memory_used_warning_ratio=0),
     f"thresholds.{MODEL}.memory_used_warning_ratio", ["must be greater than 0; got the number 0"]),
    # --- alerts that could never fire
    ("health-threshold-at-the-floor-of-default-counters", lambda d: (
        d["clusters"][0].update(exporter={"kind": "dcgm-exporter", "counters": "default"}),
        set_thresholds(MODEL, health_score_warning=0.2)(d)),
     f"thresholds.{MODEL}.health_score_warning",
     [f"GPUHealthLow could never fire for {MODEL} GPUs on dcgm-exporter 4.x with default counters (hosts[0] h1",
      "no series for the throttle component of", "never below 0.2; set health_score_warning above 0.2"]),
    ("default-health-threshold-above-what-custom-counters-can-reach", lambda d: d["clusters"][0].update(exporter={
        "kind": "dcgm-exporter", "counters": ["DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"]}),
     "clusters[0].exporter", ["fires below health_score_warning 0.5", "memory, ecc and throttle components",
                              "never below 0.6", "or disable GPUHealthLow"]),
    # --- alerts, alertmanagers
    ("unknown-alert-name", set_alert("GPUOnFire", enabled=False), "alerts.GPUOnFire",
     ["unknown alert 'GPUOnFire'; known: GPUThermalWarning, GPUThermalCritical"]),
    ("bad-alert-severity", set_alert("GPUThermalWarning", severity="page"), "alerts.GPUThermalWarning.severity",
     ["must be 'critical', 'warning' or 'info'; got 'page'"]),
    ("alert-enabled-not-a-bool", set_alert("GPUThermalWarning", enabled="sometimes"),
     "alerts.GPUThermalWarning.enabled", ["must be true or false; got 'sometimes'"]),
    ("alertmanager-with-scheme", set_prometheus(alertmanagers=["http://am:9093"]), "prometheus.alertmanagers[0]",
     ["'http://am:9093' is not host:port (no scheme, no path"]),
    ("alertmanager-without-port", set_prometheus(alertmanagers=["localhost:9093", "am"]),
     "prometheus.alertmanagers[1]", ["'am' is not host:port"]),
    ("scrape-timeout-longer-than-interval", set_prometheus(scrape_interval="5s", scrape_timeout="10s"),
     "prometheus.scrape_timeout", ["10s is longer than scrape_interval 5s"]),
    ("exporter-stale-within-a-scrape", set_prometheus(scrape_interval="30s", exporter_stale_after="20s"),
     "prometheus.exporter_stale_after", ["20s is shorter than scrape_interval 30s"]),
    ("host-label-clobbers-cluster", set_prometheus(host_label="cluster"), "prometheus.host_label",
     ["'cluster' is a label gpuobs or the exporter sets already"]),
    ("host-label-clobbers-exporter-label", set_prometheus(host_label="gpu"), "prometheus.host_label",
     ["'gpu' is a label gpuobs or the exporter sets already"]),
    ("gpu-count-boolean", lambda d: host(d)["gpus"].update(count=True), "hosts[0].gpus.count",
     ["must be a whole number; got true"]),
    ("exporter-port-equals-node-exporter-port", lambda d: host(d).update(exporter_port=9100),
     "hosts[0].exporter_port", ["port 9100 is also the host's node_exporter_port"]),
    ("mig-gpu-index-twice", lambda d: host(d)["gpus"].update(mig={"profiles": ["7g.80gb"], "gpus": [0, 0]}),
     "hosts[0].gpus.mig.gpus[1]", ["GPU index 0 is listed twice"]),
    # --- efficiency: prices, currency, idle rule
    ("negative-energy-price", set_efficiency(energy_price_per_kwh=-0.1), "efficiency.energy_price_per_kwh",
     ["must be at least 0; got the number -0.1"]),
    ("negative-gpu-hour-price", set_efficiency(gpu_hour_price={MODEL: -2}), f"efficiency.gpu_hour_price.{MODEL}",
     ["must be at least 0; got the number -2"]),
    ("negative-cluster-energy-price", set_efficiency(clusters={"c1": {"energy_price_per_kwh": -1}}),
     "efficiency.clusters.c1.energy_price_per_kwh", ["must be at least 0; got the number -1"]),
    ("currency-not-iso-4217", set_efficiency(currency="euro"), "efficiency.currency",
     ["'euro' is not an ISO 4217 currency code; use its three capital letters, e.g. USD"]),
    ("currency-symbol", set_efficiency(currency="$"), "efficiency.currency", ["'$' is not an ISO 4217 currency"]),
    ("currency-missing", lambda d: d.__setitem__("efficiency", {"energy_price_per_kwh": 0.2}), "efficiency.currency",
     ["missing"]),
    ("idle-threshold-above-1", set_efficiency(idle={"threshold": 1.5}), "efficiency.idle.threshold",
     ["must be at most 1; got the number 1.5"]),
    ("idle-threshold-below-0", set_efficiency(idle={"threshold": -0.1}), "efficiency.idle.threshold",
     ["must be at least 0; got the number -0.1"]),
    ("idle-for-not-a-duration", set_efficiency(idle={"for": "an hour"}), "efficiency.idle.for",
     ["'an hour' is not a Prometheus duration"]),
    ("gpu-hour-price-of-unknown-model", set_efficiency(gpu_hour_price={"A1000": 1.0}),
     "efficiency.gpu_hour_price.A1000", ["unknown GPU model 'A1000'; known: "]),
    ("gpu-hour-price-of-a-model-no-host-has", set_efficiency(gpu_hour_price={"H100-SXM5-80GB": 3.0}),
     "efficiency.gpu_hour_price.H100-SXM5-80GB", ["no host has H100-SXM5-80GB GPUs"]),
    ("efficiency-of-unknown-cluster", set_efficiency(clusters={"c9": {"carbon_intensity": 300}}),
     "efficiency.clusters.c9", ["unknown cluster 'c9'; known: c1"]),
    ("negative-carbon-intensity", set_efficiency(clusters={"c1": {"carbon_intensity": -5}}),
     "efficiency.clusters.c1.carbon_intensity", ["must be at least 0; got the number -5"]),
    ("efficiency-idle-for-shorter-than-two-recordings", set_efficiency(idle={"for": "3m"}), "efficiency.idle.for",
     ["3m is shorter than 2 evaluations of the efficiency rules (120s apart at evaluation_interval 15s), which "
      "record whether a GPU is idle; GPUAllocatedIdle would call it idle on one glimpse. Set at least 240s"]),
    ("efficiency-idle-for-shorter-than-two-slower-recordings", lambda d: (
        set_efficiency(idle={"for": "9m"})(d), set_prometheus(evaluation_interval="5m")(d)),
     "efficiency.idle.for", ["9m is shorter than 2 evaluations of the efficiency rules (300s apart at "
                             "evaluation_interval 5m)", "Set at least 600s"]),
    ("efficiency-idle-alert-without-the-section", set_alert("GPUAllocatedIdle", severity="info"),
     "alerts.GPUAllocatedIdle", ["GPUAllocatedIdle comes with the efficiency section, which this spec does not "
                                 "have; add the section or leave the alert out"]),
    ("pod-resources-not-a-bool", lambda d: d.__setitem__("kubernetes", {"exporter": {
        "image": "registry.example.com/gpuobs/gpuobs-exporter:0.1.0", "pod_resources": "yes"}}),
     "kubernetes.exporter.pod_resources", ["must be true or false; got 'yes'"]),
]


def _case_id(case):
    return case.id if hasattr(case, "id") else case[0]


def test_base_spec_is_valid(tmp_path):
    fleet = load_spec(write_yaml(tmp_path, base()))
    assert [h.name for h in fleet.hosts] == ["h1"]
    assert fleet.hosts[0].gpus.model == MODEL and fleet.hosts[0].gpus.count == 8


def test_case_ids_are_distinct():
    ids = [_case_id(c) for c in CASES]
    assert len(ids) == len(set(ids)) >= 24


@pytest.mark.parametrize("case_id, change, path, fragments", CASES, ids=[_case_id(c) for c in CASES])
def test_invalid_yaml_spec(tmp_path, case_id, change, path, fragments):
    problems = problems_after(tmp_path, change)
    assert [p.path for p in problems] == [path], problems
    for fragment in fragments:
        assert fragment in problems[0].message


# --- whole-file problems ---------------------------------------------------------------------------

@pytest.mark.parametrize("change", [set_thresholds(MODEL, health_score_warning=0.21),
                                    set_alert("GPUHealthLow", enabled=False)], ids=["above-the-floor", "alert-off"])
def test_default_counters_take_a_health_threshold_they_can_reach_or_the_alert_off(tmp_path, change):
    data = base()
    data["clusters"][0]["exporter"] = {"kind": "dcgm-exporter", "counters": "default"}
    change(data)
    load_spec(write_yaml(tmp_path, data))


def test_not_valid_yaml_reports_line(tmp_path):
    path = write_text(tmp_path, """
        clusters:
          - name: c1
        hosts:
          - name: h1
            cluster: c1: oops
            gpus: {model: A100-SXM4-80GB, count: 8}
        """, "broken.yaml")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].path == ""
    assert problems[0].message.startswith("not valid YAML: ")
    assert "mapping values are not allowed" in problems[0].message  # libyaml and PyYAML word it differently
    assert problems[0].line == 5
    assert "(line 5)" in str(SpecError(str(path), problems))


@pytest.mark.parametrize("text", ["- clusters: []\n- hosts: []\n", "just a string\n", ""],
                         ids=["top-level-list", "top-level-scalar", "empty-file"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    problems = problems_of(write_text(tmp_path, text, "spec.yaml"))
    assert [(p.path, p.message) for p in problems] == [
        ("", "the spec must be a YAML mapping with clusters and hosts")]


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"clusters": []}', encoding="utf-8")
    problems = problems_of(path)
    assert [(p.path, p.message) for p in problems] == [("", "a spec is a .yaml, .yml or .py file")]


def test_yml_suffix_is_accepted(tmp_path):
    assert load_spec(write_yaml(tmp_path, base(), "spec.yml")).hosts[0].name == "h1"


@pytest.mark.parametrize("make", [lambda tmp: tmp / "nope.yaml", lambda tmp: tmp],
                         ids=["missing-file", "directory"])
def test_missing_file(tmp_path, make):
    problems = problems_of(make(tmp_path))
    assert [(p.path, p.message) for p in problems] == [("", "no such spec file")]


# --- several problems, line numbers ---------------------------------------------------------------

def test_several_schema_problems_are_reported_together(tmp_path):
    data = base()
    gpus(data)["model"] = "A100"
    add_host(data)["gpus"]["count"] = 0
    data["prometheus"] = {"scrape_interval": "15sec"}
    data["colour"] = "blue"
    problems = problems_of(write_yaml(tmp_path, data))
    by_path = {p.path: p.message for p in problems}
    assert [p.path for p in problems][0] == "colour"  # an unknown key first
    assert set(by_path) == {"hosts[0].gpus.model", "hosts[1].gpus.count", "prometheus.scrape_interval", "colour"}
    assert "unknown GPU model 'A100'" in by_path["hosts[0].gpus.model"]
    assert "must be at least 1" in by_path["hosts[1].gpus.count"]
    assert "'15sec' is not a Prometheus duration" in by_path["prometheus.scrape_interval"]
    assert by_path["colour"].startswith("unknown key 'colour'")
    assert all(p.line for p in problems)


def test_several_cross_check_problems_are_reported_together(tmp_path):
    data = base()
    data["clusters"].append({"name": "c1"})
    host(data)["labels"] = {"severity": "x"}
    add_host(data, cluster="c9")
    data["teams"] = [{"name": "ml"}]
    with pytest.raises(SpecError) as info:
        load_spec(write_yaml(tmp_path, data))
    paths = [p.path for p in info.value.problems]
    assert paths == ["clusters[1].name", "hosts[0].labels.severity", "hosts[1].cluster", "teams[0]"]
    rendered = str(info.value).splitlines()
    assert len(rendered) == 4
    assert all(line.startswith(f"{tmp_path / 'spec.yaml'}: ") for line in rendered)


HOST_TYPO = """
    version: 1
    clusters:
      - name: c1
    hosts:
      - name: h1
        cluster: c9
        adress: 10.0.0.1
        gpus:
          model: A100-SXM4-80GB
          count: eight
    """


def test_yaml_line_of_a_schema_error_inside_a_host(tmp_path):
    path = write_text(tmp_path, HOST_TYPO, "spec.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = {p.path: p.line for p in info.value.problems}
    assert lines == {"hosts[0].adress": 7, "hosts[0].gpus.count": 10}
    message = str(info.value)
    assert f"{path}: hosts[0].adress: unknown key 'adress'; did you mean 'address'? (line 7)" in message
    assert "hosts[0].gpus.count: " in message and "(line 10)" in message


def test_yaml_line_of_a_cross_check_error_inside_a_host(tmp_path):
    text = HOST_TYPO.replace("        adress: 10.0.0.1\n", "").replace("eight", "8")
    path = write_text(tmp_path, text, "spec.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [(p.path, p.line) for p in info.value.problems] == [("hosts[0].cluster", 6)]
    assert str(info.value) == f"{path}: hosts[0].cluster: unknown cluster 'c9'; known: c1 (line 6)"


def test_an_efficiency_problem_names_its_line_and_nothing_is_written(tmp_path):
    text = """
        version: 1
        clusters: [{name: c1}]
        hosts:
          - {name: h1, cluster: c1, gpus: {model: A100-SXM4-80GB, count: 8}}
        efficiency:
          currency: EUR
          gpu_hour_price:
            A1000: 1.5
        """
    path = write_text(tmp_path, text, "spec.yaml")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{path}: efficiency.gpu_hour_price.A1000: unknown GPU model 'A1000'; known: " in result.stderr
    assert "(line 8)" in result.stderr
    assert not out.exists()


# --- Python specs ---------------------------------------------------------------------------------

def test_python_spec_valid(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Cluster, Fleet, Gpus, Host

        fleet = Fleet(clusters=[Cluster(name="c1")],
                      hosts=[Host(name="h1", cluster="c1", gpus=Gpus(model="A100-SXM4-80GB", count=8))],
                      alerts={"GPUHealthLow": {"for": "15m"}})
        """, "fleet_spec.py")
    fleet = load_spec(path)
    assert fleet.hosts[0].gpus.count == 8
    assert fleet.alerts["GPUHealthLow"].for_ == "15m"


def test_python_spec_validation_error_at_construction(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Fleet

        fleet = Fleet(clusters=[{"name": "c1"}],
                      hosts=[{"name": "h1", "cluster": "c1", "gpus": {"model": "A100", "count": 8, "colour": 1}}])
        """, "spec.py")
    problems = problems_of(path)
    # A Python spec's own gpu_models are known only once its Fleet exists, so model names are
    # checked after construction: the shape error comes first, then the model.
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("hosts[0].gpus.colour", "unknown key 'colour'; allowed: model, count, mig", 3)]
    path.write_text(path.read_text().replace(', "colour": 1', ""))
    by_path = {p.path: p.message for p in problems_of(path)}
    assert set(by_path) == {"hosts[0].gpus.model"}
    assert "unknown GPU model 'A100'" in by_path["hosts[0].gpus.model"]


def test_python_spec_validation_error_in_nested_class(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Cluster, Fleet, Gpus, Host

        fleet = Fleet(clusters=[Cluster(name="c1")],
                      hosts=[Host(name="h1", cluster="c1", gpus=Gpus(model="A100-SXM4-80GB", count=8, colour=1))])
        """, "spec.py")
    problems = problems_of(path)
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("hosts[0].gpus.colour", "unknown key 'colour'; allowed: model, count, mig", 4)]


def test_python_spec_changed_after_construction_is_validated_again(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Cluster, Fleet, Gpus, Host

        fleet = Fleet(clusters=[Cluster(name="c1")],
                      hosts=[Host(name="h1", cluster="c1", gpus=Gpus(model="A100-SXM4-80GB", count=8))])
        fleet.hosts[0].gpus.count = 0
        """, "spec.py")
    problems = problems_of(path)
    assert [p.path for p in problems] == ["hosts[0].gpus.count"]
    assert "must be at least 1" in problems[0].message


def test_python_spec_cross_check_problem(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Fleet

        fleet = Fleet(clusters=[{"name": "c1"}],
                      hosts=[{"name": "h1", "cluster": "c2", "gpus": {"model": "A100-SXM4-80GB", "count": 8}}])
        """, "spec.py")
    problems = problems_of(path)
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("hosts[0].cluster", "unknown cluster 'c2'; known: c1", 3)]


@pytest.mark.parametrize("source, found", [
    ("clusters = []\n", "nothing"),
    ("fleet = {'clusters': [], 'hosts': []}\n", "dict"),
], ids=["no-fleet", "fleet-is-a-dict"])
def test_python_spec_without_fleet(tmp_path, source, found):
    problems = problems_of(write_text(tmp_path, source, "spec.py"))
    assert [(p.path, p.message) for p in problems] == [
        ("", f"a Python spec must define `fleet = Fleet(...)`; found {found}")]


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('inventory service down')\n",
     "running the spec failed: RuntimeError: inventory service down"),
    ("import gpuobs_no_such_module\n",
     "running the spec failed: ModuleNotFoundError: No module named 'gpuobs_no_such_module'"),
    ("fleet = (\n", "running the spec failed: SyntaxError: "),
], ids=["raises", "bad-import", "syntax-error"])
def test_python_spec_raising(tmp_path, source, message):
    problems = problems_of(write_text(tmp_path, source, "spec.py"))
    assert len(problems) == 1
    assert problems[0].path == ""
    assert problems[0].message.startswith(message)


# --- CLI ------------------------------------------------------------------------------------------

def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cli_files(tmp_path):
    good = write_yaml(tmp_path, base(), "good.yaml")
    data = base()
    gpus(data)["model"] = "A100"
    bad = write_yaml(tmp_path, data, "bad.yaml")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sentinel.txt").write_text("keep me\n", encoding="utf-8")
    return good, bad, out


def _all_output(result) -> str:
    return result.output + (result.stderr or "")


def test_cli_generate_good_spec_writes(cli_files):
    """Positive control for the 'writes nothing' tests below."""
    good, _, out = cli_files
    result = CliRunner().invoke(main, ["generate", str(good), "-o", str(out)])
    assert result.exit_code == 0, _all_output(result)
    assert "good/prometheus/prometheus.yml" in tree(out)


def test_cli_generate_bad_spec(cli_files):
    _, bad, out = cli_files
    before = tree(out)
    result = CliRunner().invoke(main, ["generate", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{bad}: hosts[0].gpus.model: unknown GPU model 'A100'; known: " in result.stderr
    assert "Traceback" not in _all_output(result)
    assert tree(out) == before == {"sentinel.txt": "keep me\n"}
    assert sorted(p.name for p in out.iterdir()) == ["sentinel.txt"]


@pytest.mark.parametrize("order", ["good-first", "bad-first"])
def test_cli_generate_good_and_bad_spec_writes_nothing(cli_files, order):
    good, bad, out = cli_files
    specs = [good, bad] if order == "good-first" else [bad, good]
    before = tree(out)
    result = CliRunner().invoke(main, ["generate", *map(str, specs), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{bad}: hosts[0].gpus.model: unknown GPU model" in result.stderr
    assert tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["sentinel.txt"]  # no good/, no staging folders


def test_cli_validate_bad_spec(cli_files):
    _, bad, _ = cli_files
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: hosts[0].gpus.model: unknown GPU model 'A100'" in result.stderr
    assert "valid" not in result.stdout


def test_cli_validate_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["validate", str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: no such spec file" in result.stderr


def test_a_key_given_twice_is_an_error_with_both_lines(tmp_path):
    path = write_text(tmp_path, """
        clusters:
          - name: c1
        hosts:
          - name: h1
            cluster: c1
            gpus: {model: A100-SXM4-80GB, count: 8}
            gpus: {model: A100-SXM4-80GB, count: 4}
        """, "spec.yaml")
    problems = problems_of(path)
    assert len(problems) == 1
    assert "key 'gpus' appears twice in one mapping (first on line 6)" in problems[0].message
    assert problems[0].line == 7


def test_python_spec_calling_sys_exit_is_reported(tmp_path):
    path = write_text(tmp_path, """
        import sys
        sys.exit(3)
        """, "spec.py")
    problems = problems_of(path)
    assert problems[0].message == "running the spec failed: SystemExit: 3"


def test_missing_key_points_at_the_line_of_its_parent(tmp_path):
    path = write_text(tmp_path, """
        clusters:
          - name: c1
        hosts:
          - name: h1
            cluster: c1
            gpus: {model: A100-SXM4-80GB}
        """, "spec.yaml")
    problems = problems_of(path)
    assert [(p.path, p.line) for p in problems] == [("hosts[0].gpus.count", 6)]


def test_ipv6_address_becomes_a_bracketed_target(tmp_path):
    from gpuobs.generate import load_model, render
    data = base()
    host(data).update(address="fd00::1")
    files = render(load_model(write_yaml(tmp_path, data)))
    config = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["[fd00::1]:9400"]


# --- input that would break the output -------------------------------------------------------------

def set_links(**values):
    return lambda d: d.setdefault("links", {}).update(values)


def set_grafana(**values):
    return lambda d: d.setdefault("grafana", {}).update(values)


PANEL = {"title": "Energy", "expr": "sum(gpu:power:watts)"}

# (id, change, exact path, fragments the message must contain)
BREAKING = [
    ("label-value-with-a-line-break", lambda d: host(d).update(labels={"rack": "r01\n"}), "hosts[0].labels.rack",
     ["'r01\\n': a label value must be one line, without control characters"]),
    ("label-name-with-a-line-break", lambda d: host(d).update(labels={"rack\n": "r01"}), "hosts[0].labels.'rack\\n'",
     ["'rack\\n' is not a valid label name"]),
    ("empty-label-value", lambda d: d["clusters"][0].update(labels={"region": ""}), "clusters[0].labels.region",
     ["an empty label value removes the label in Prometheus; give a value or leave the label out"]),
    ("external-label-value-with-a-tab", set_prometheus(external_labels={"site": "a\tb"}),
     "prometheus.external_labels.site", ["'a\\tb': a label value must be one line"]),
    ("fleet-name-with-a-line-break", lambda d: d.update(name="fleet\n"), "name", ["'fleet\\n' is not a valid name"]),
    ("host-name-with-a-line-break", lambda d: host(d).update(name="h1\n"), "hosts[0].name",
     ["'h1\\n' is not a valid name"]),
    ("address-with-a-line-break", lambda d: host(d).update(address="10.0.0.1\n"), "hosts[0].address",
     ["'10.0.0.1\\n' is not a host name or IP address"]),
    ("ipv6-address-with-a-line-break", lambda d: host(d).update(address="fd00::1\n"), "hosts[0].address",
     ["'fd00::1\\n' is not a host name or IP address"]),
    ("duration-with-a-line-break", set_prometheus(scrape_interval="15s\n"), "prometheus.scrape_interval",
     ["'15s\\n' is not a Prometheus duration"]),
    ("alert-for-with-a-line-break", set_alert("GPUThermalWarning", **{"for": "5m\n"}),
     "alerts.GPUThermalWarning.for", ["'5m\\n' is not a Prometheus duration"]),
    ("url-with-a-line-break", set_links(grafana_url="http://grafana:3000\n"), "links.grafana_url",
     ["'http://grafana:3000\\n' is not an http(s) URL (ASCII, no spaces or line breaks)"]),
    ("url-with-a-space", set_links(runbook_url="http://wiki/run books"), "links.runbook_url",
     ["is not an http(s) URL"]),
    ("alertmanager-with-a-line-break", set_prometheus(alertmanagers=["am:9093\n"]), "prometheus.alertmanagers[0]",
     ["'am:9093\\n' is not host:port"]),
    ("self-address-with-a-scheme", set_prometheus(self_address="http://localhost:9090"),
     "prometheus.self_address", ["'http://localhost:9090' is not host:port"]),
    ("template-in-an-alert-label", set_alert("GPUThermalWarning", labels={"page": "{{ $value }}"}),
     "alerts.GPUThermalWarning.labels.page",
     ["'{{ $value }}' contains '{{', which Prometheus expands as a template in alert labels"]),
    ("template-in-the-grafana-link", set_links(grafana_url="http://grafana:3000/{{$labels.x}}"),
     "links.grafana_url", ["contains '{{', which Prometheus expands as a template in alert annotations"]),
    ("empty-alert-label-value", set_alert("GPUThermalWarning", labels={"page": ""}),
     "alerts.GPUThermalWarning.labels.page", ["an empty label value removes the label"]),
    ("gpu-model-nvml-name-with-a-line-break", lambda d: d.update(gpu_models=[{
        "name": "x1", "nvml_name": "X1\n", "power_limit_watts": 300, "gpu_temp_warning": 80,
        "gpu_temp_critical": 85, "memory_mib": 1024}]),
     "gpu_models[0].nvml_name", ["'X1\\n': this text must be one line"]),
    ("dashboard-title-with-a-line-break", set_grafana(dashboards=[{"title": "A\nB", "panels": [PANEL]}]),
     "grafana.dashboards[0].title", ["'A\\nB': this text must be one line"]),
    ("grafana-folder-with-a-line-break", set_grafana(folder="GPU\nfleet"), "grafana.folder",
     ["this text must be one line"]),
    ("two-titles-with-one-file-name", set_grafana(dashboards=[{"title": "GPU temp", "panels": [PANEL]},
                                                              {"title": "GPU-temp", "panels": [PANEL]}]),
     "grafana.dashboards[1].title",
     ["this title and 'GPU temp' both name the dashboard's file custom-gpu-temp.json; change one title"]),
]


@pytest.mark.parametrize("case_id, change, path, fragments", BREAKING, ids=[c[0] for c in BREAKING])
def test_input_that_would_break_the_output(tmp_path, case_id, change, path, fragments):
    problems = problems_after(tmp_path, change)
    assert [p.path for p in problems] == [path], problems
    for fragment in fragments:
        assert fragment in problems[0].message
    assert "\n" not in str(SpecError("spec.yaml", problems))  # one line per problem, whatever the value


def test_a_fleet_name_from_a_file_name_that_is_not_a_name(tmp_path):
    problems = problems_of(write_yaml(tmp_path, base(), "My Fleet.yaml"))
    assert [(p.path, p.message) for p in problems] == [
        ("name", "the fleet takes its name from the file's, 'My Fleet', which is not a valid name (lower-case "
                 "letters, digits, '.', '_' and '-'); set name: in the spec")]


def test_a_fleet_name_given_in_the_spec_overrides_an_odd_file_name(tmp_path):
    data = base()
    data["name"] = "fleet"
    assert load_spec(write_yaml(tmp_path, data, "My Fleet.yaml")).name == "fleet"


# --- uids and Kubernetes names: ASCII, valid, distinct ---------------------------------------------

GRAFANA_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def generated(tmp_path, data, name="spec.yaml") -> dict[str, str]:
    from gpuobs.generate import load_model, render
    return render(load_model(write_yaml(tmp_path, data, name)))


def dashboards_of(files) -> dict[str, dict]:
    return {path: json.loads(text) for path, text in files.items()
            if path.startswith("grafana/dashboards/")}


def with_dashboards(*titles, name="fleet"):
    data = base()
    data["name"] = name
    data["grafana"] = {"dashboards": [{"title": title, "panels": [PANEL]} for title in titles]}
    data["kubernetes"] = {"exporter": {"image": "registry.example.com/gpuobs-exporter:0.1.0"}}
    return data


def test_committed_uids_keep_their_plain_form():
    from gpuobs import links
    assert links.dashboard_uid("fleet", "fleet-overview") == "gpuobs-fleet-fleet-overview"
    assert links.custom_dashboard_uid("fleet", "Training capacity", None) == "gpuobs-fleet-training-capacity"
    assert links.custom_dashboard_file("Training capacity") == "custom-training-capacity.json"


@pytest.mark.parametrize("titles, fleet", [
    (("GPU utilization by cluster, last 7 days", "GPU utilization by cluster, last 30 days"), "fleet"),
    (("Température des GPU", "Энергия", "電力", "---"), "fleet"),
    (("Capacity",), "a-fleet-name-well-over-thirty-two-characters-long.and-more"),
], ids=["titles-alike-in-24-characters", "titles-not-ascii", "fleet-name-over-32-characters"])
def test_uids_and_kubernetes_names_are_ascii_valid_and_distinct(tmp_path, titles, fleet):
    from gpuobs.spec.kube import data_key, dns_subdomain
    files = generated(tmp_path, with_dashboards(*titles, name=fleet))
    documents = dashboards_of(files)
    uids = [d["uid"] for d in documents.values()]
    assert len(documents) == 4 + len(titles)  # no dashboard overwrote another
    assert all(GRAFANA_UID.fullmatch(uid) for uid in uids), uids
    assert len(set(uids)) == len(uids), uids
    assert all(path.isascii() for path in files)
    maps = [yaml.safe_load(text) for path, text in files.items() if "/dashboard-" in path]
    assert len(maps) == len(documents)
    for config_map in maps:
        assert dns_subdomain(config_map["metadata"]["name"])
        assert all(data_key(key) for key in config_map["data"])


def test_fleet_names_alike_in_their_first_32_characters_give_distinct_uids():
    from gpuobs import links
    first, second = "a" * 40 + "-east", "a" * 40 + "-west"
    uids = {links.dashboard_uid(fleet, key) for fleet in (first, second) for key in links.DASHBOARDS}
    assert len(uids) == 2 * len(links.DASHBOARDS)
    assert all(GRAFANA_UID.fullmatch(uid) for uid in uids)


def test_a_dot_in_the_fleet_name_never_reaches_a_uid():
    from gpuobs import links
    uid = links.dashboard_uid("gpu.lab", "health")
    assert GRAFANA_UID.fullmatch(uid) and uid.startswith("gpuobs-gpu-lab-health-")
    assert uid != links.dashboard_uid("gpu-lab", "health")


# --- hostile files ---------------------------------------------------------------------------------

def write_bytes(tmp_path: Path, raw: bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def billion_laughs(levels: int) -> str:
    """A small document whose aliases expand to 10**levels values."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nclusters: *a{levels - 1}\n"


def test_a_latin_1_file_is_one_clean_error(tmp_path):
    path = write_bytes(tmp_path, "clusters:\n  - name: c1\n    labels: {site: Montréal}\n".encode("latin-1"))
    problems = problems_of(path)
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("", "not UTF-8: byte 0xe9 at offset 47 cannot be read; save the file as UTF-8", 3)]


def test_an_alias_bomb_is_refused_quickly_and_briefly(tmp_path):
    text = billion_laughs(6)
    assert len(text) < 2000
    started = time.monotonic()
    problems = problems_of(write_text(tmp_path, text, "bomb.yaml"))
    assert time.monotonic() - started < 5
    assert [p.path for p in problems] == [""]
    assert problems[0].message == ("aliases expand the document by 2345661 values, more than the 100000 allowed "
                                   "(an alias bomb?); write the values out, or alias fewer")
    assert len(str(SpecError("bomb.yaml", problems))) < 300


def test_aliases_within_the_bound_still_work(tmp_path):
    hosts = "\n".join(f"  - {{name: h{i}, cluster: c1, gpus: *a100x8}}" for i in range(50))
    path = write_text(tmp_path, "clusters: [{name: c1}]\ngpus: &a100x8 {model: A100-SXM4-80GB, count: 8}\n"
                      f"hosts:\n{hosts}\n", "spec.yaml")
    problems = problems_of(path)  # the anchor's own key is unknown; the 50 aliases are fine
    assert [p.path for p in problems] == ["gpus"]


DEEP = "the document nests more than 64 levels deep; a spec needs about 8"


@pytest.mark.parametrize("text, message", [
    ("clusters: " + "[" * 100_000 + "]" * 100_000 + "\n", DEEP),
    ("clusters: " + "{a: " * 70 + "1" + "}" * 70 + "\n", DEEP),
    ("a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 70)) + "clusters: *a69\n", DEEP),
    ("clusters: &loop [*loop]\n", "an alias refers to a value that contains it; a spec cannot be recursive"),
    ("clusters: [{name: c\x01}]\n", "not valid YAML: character #x0001 is not allowed (control characters are "
     "not allowed)"),
], ids=["deep-flow-lists", "deep-flow-mappings", "deep-through-aliases", "recursive-alias", "control-character"])
def test_odd_yaml_is_one_clean_error(tmp_path, text, message):
    problems = problems_of(write_text(tmp_path, text, "odd.yaml"))
    assert [(p.path, p.message) for p in problems] == [("", message)]
    assert problems[0].line == 1


def test_an_integer_too_long_for_python_is_one_clean_error(tmp_path):
    data = base()
    gpus(data)["count"] = "COUNT"
    path = write_yaml(tmp_path, data)
    path.write_text(path.read_text().replace("COUNT", "1" * 5000))
    assert [(p.path, p.message) for p in problems_of(path)] == [
        ("", "a value cannot be read: Exceeds the limit (4300 digits) for integer string conversion: value has "
             "5000 digits")]


@pytest.mark.parametrize("change, start", [
    (lambda d: host(d).update(name="x" * 1_000_000), "hosts[0].name: 'xxx"),
    (lambda d: gpus(d).update(model="A" * 1_000_000), "hosts[0].gpus.model: unknown GPU model 'AAA"),
    (lambda d: host(d).update(labels={"rack": ["r"] * 100_000}), "hosts[0].labels.rack: must be text; got a list"),
    (lambda d: d.update(alerts={"X" * 100_000: {"enabled": False}}), "alerts.XXX"),
    (lambda d: d.update(thresholds={"A100\n" * 100_000: {"gpu_temp_warning": 80}}), "thresholds.A100\\nA100"),
    (lambda d: host(d).update(**{"k" * 100_000: 1}), "hosts[0].'kkk"),
], ids=["long-name", "long-model", "long-list", "long-alert-key", "long-threshold-key", "long-unknown-key"])
def test_a_message_never_quotes_more_than_200_characters_of_a_value(tmp_path, change, start):
    problems = problems_after(tmp_path, change)
    rendered = str(SpecError("spec.yaml", problems))
    assert len(problems) == 1 and rendered.startswith(f"spec.yaml: {start}"), rendered[:300]
    assert "\n" not in rendered and len(rendered) < 1500  # a list of known names may follow
    assert all(len(quoted) <= 200 for quoted in re.findall(r"'[^']*'", rendered)), rendered


# --- error quality ---------------------------------------------------------------------------------

def test_a_typo_is_reported_with_its_near_miss_and_not_as_a_missing_key_too(tmp_path):
    data = base()
    gpus(data)["modle"] = gpus(data).pop("model")
    problems = problems_of(write_yaml(tmp_path, data))
    assert [(p.path, p.message) for p in problems] == [
        ("hosts[0].gpus.modle", "unknown key 'modle'; did you mean 'model'?")]


def test_an_unknown_key_comes_before_the_missing_one_it_does_not_explain(tmp_path):
    data = base()
    gpus(data)["colour"] = gpus(data).pop("model")
    problems = problems_of(write_yaml(tmp_path, data))
    assert [(p.path, p.message) for p in problems] == [
        ("hosts[0].gpus.colour", "unknown key 'colour'; allowed: model, count, mig"),
        ("hosts[0].gpus.model", "required key missing")]


@pytest.mark.parametrize("line, message", [
    ("labels: {rack: 01}", "must be text; YAML reads 01 as the number 1; write '01' in quotes"),
    ("labels: {rack: 1.10}", "must be text; YAML reads 1.10 as the number 1.1; write '1.10' in quotes"),
    ("labels: {rack: yes}", "must be text; YAML reads yes as true; write 'yes' in quotes"),
    ("labels: {rack: }", "must be text; got nothing (null)"),
], ids=["leading-zero", "decimal", "yes", "empty"])
def test_a_value_yaml_read_as_a_number_suggests_quoting_it(tmp_path, line, message):
    path = write_text(tmp_path, f"""
        clusters: [{{name: c1}}]
        hosts:
          - name: h1
            cluster: c1
            {line}
            gpus: {{model: A100-SXM4-80GB, count: 8}}
        """, "spec.yaml")
    problems = problems_of(path)
    assert [(p.path, p.message, p.line) for p in problems] == [("hosts[0].labels.rack", message, 5)]


def test_a_key_yaml_read_as_a_boolean_suggests_quoting_it(tmp_path):
    path = write_text(tmp_path, """
        clusters: [{name: c1, labels: {on: x}}]
        hosts: [{name: h1, cluster: c1, gpus: {model: A100-SXM4-80GB, count: 8}}]
        """, "spec.yaml")
    problems = problems_of(path)
    assert [(p.message, p.line) for p in problems] == [
        ("the key must be text; YAML reads on as true; write 'on' in quotes", 1)]


# pydantic's error types a spec meets, each in the project's words (id, change, path, exact message)
WORDING = [
    ("missing", lambda d: gpus(d).pop("count"), "hosts[0].gpus.count", "required key missing"),
    ("extra_forbidden", lambda d: gpus(d).update(vendor="nvidia"), "hosts[0].gpus.vendor",
     "unknown key 'vendor'; allowed: model, count, mig"),
    ("too_short", lambda d: d.update(hosts=[]), "hosts", "must list at least one item"),
    ("too_short-mapping", lambda d: d.update(alertmanager={
        "receivers": [{"name": "r", "webhook": {"url": "http://r"}}], "routing": {"by_severity": {"critical": "r"}},
        "inhibit_rules": [{"source": {}, "target": {"x": "y"}, "equal": ["cluster"]}]}),
     "alertmanager.inhibit_rules[0].source", "must have at least one entry"),
    ("string_too_short", set_grafana(dashboards=[{"title": "", "panels": [PANEL]}]), "grafana.dashboards[0].title",
     "must not be empty"),
    ("string_pattern_mismatch", set_grafana(dashboards=[{"title": "T", "uid": "a b", "panels": [PANEL]}]),
     "grafana.dashboards[0].uid", "does not have the required form ^[A-Za-z0-9_-]{1,40}$"),
    ("int_parsing", lambda d: gpus(d).update(count="8 GPUs"), "hosts[0].gpus.count",
     "must be a whole number; got '8 GPUs'"),
    ("int_from_float", lambda d: gpus(d).update(count=8.5), "hosts[0].gpus.count",
     "must be a whole number; got the number 8.5"),
    ("float_parsing", set_thresholds(MODEL, power_limit_watts="400W"), f"thresholds.{MODEL}.power_limit_watts",
     "must be a number; got '400W'"),
    ("bool_parsing", set_alert("GPUThermalWarning", enabled="maybe"), "alerts.GPUThermalWarning.enabled",
     "must be true or false; got 'maybe'"),
    ("string_type", lambda d: host(d).update(cluster=["c1"]), "hosts[0].cluster", "must be text; got a list"),
    ("list_type", lambda d: d.update(clusters={"name": "c1"}), "clusters", "must be a list; got a mapping"),
    ("dict_type", lambda d: host(d).update(labels="rack=r1"), "hosts[0].labels",
     "must be a mapping (key: value); got 'rack=r1'"),
    ("model_type", lambda d: host(d).update(gpus="8x A100"), "hosts[0].gpus",
     "must be a mapping (key: value); got '8x A100'"),
    ("literal_error", set_alert("GPUThermalWarning", severity="critcal"), "alerts.GPUThermalWarning.severity",
     "must be 'critical', 'warning' or 'info'; got 'critcal'; did you mean 'critical'?"),
    ("greater_than", set_thresholds(MODEL, power_warning_ratio=0), f"thresholds.{MODEL}.power_warning_ratio",
     "must be greater than 0; got the number 0"),
    ("greater_than_equal", lambda d: gpus(d).update(count=0), "hosts[0].gpus.count",
     "must be at least 1; got the number 0"),
    ("less_than_equal", set_thresholds(MODEL, memory_used_warning_ratio=1.5),
     f"thresholds.{MODEL}.memory_used_warning_ratio", "must be at most 1; got the number 1.5"),
    ("union", lambda d: d["clusters"][0].update(exporter={"kind": "dcgm-exporter", "counters": 5}),
     "clusters[0].exporter.counters", "must be 'default' or 'gpuobs', or a list; got the number 5"),
    ("union-member-that-got-in", lambda d: d["clusters"][0].update(exporter={
        "kind": "dcgm-exporter", "counters": ["DCGM_FI_DEV_GPU_TEMP", 5]}),
     "clusters[0].exporter.counters[1]", "must be text; YAML reads 5 as the number 5; write '5' in quotes"),
    ("literal-key", lambda d: d.update(teams=[{"name": "t", "clusters": ["c1"], "receivers": {"page": "x"}}]),
     "teams[0].receivers.page", "unknown key 'page'; allowed: critical, warning, info"),
]


@pytest.mark.parametrize("case_id, change, path, message", WORDING, ids=[c[0] for c in WORDING])
def test_pydantic_errors_in_our_words(tmp_path, case_id, change, path, message):
    problems = problems_after(tmp_path, change)
    assert [(p.path, p.message) for p in problems] == [(path, message)]


PYDANTIC_WORDING = ("Input should", "should have at least", "String should", "after validation", "[type=",
                    "Field required", "Extra inputs", "valid dictionary", "(got ")


@pytest.mark.parametrize("case_id, change", [(c[0], c[1]) for c in CASES + BREAKING],
                         ids=[c[0] for c in CASES + BREAKING])
def test_no_message_speaks_pydantic(tmp_path, case_id, change):
    for problem in problems_after(tmp_path, change):
        assert not any(jargon in problem.message for jargon in PYDANTIC_WORDING), problem.message


LOOPED = """
    from gpuobs.spec import Cluster, Fleet, Gpus, Host

    hosts = [Host(name=f"h{i}", cluster="c1",
                  gpus=Gpus(model="A100-SXM4-80GB", count=0 if i == 2 else 8))
             for i in range(4)]
    spare = Gpus(model="A100-SXM4-80GB", count=99)
    fleet = Fleet(clusters=[Cluster(name="c1")], hosts=hosts)
    """


def test_python_spec_problems_name_the_host_index_and_the_line(tmp_path):
    problems = problems_of(write_text(tmp_path, LOOPED, "spec.py"))
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("hosts[2].gpus.count", "must be at least 1; got the number 0", 4),
        ("Gpus(...).count", "must be at most 64; got the number 99", 6),  # built, but not in the fleet
    ]


def test_python_spec_cross_check_problem_names_the_line_of_its_object(tmp_path):
    path = write_text(tmp_path, LOOPED.replace("0 if i == 2 else 8", "8").replace("count=99", "count=8")
                      .replace('name=f"h{i}"', 'name="h1"'), "spec.py")
    assert [(p.path, p.line) for p in problems_of(path)][:1] == [("hosts[1].name", 3)]


def test_python_spec_failure_names_its_line(tmp_path):
    path = write_text(tmp_path, """
        hosts = []
        raise RuntimeError("inventory down\\n" + "x" * 1000)
        """, "spec.py")
    problems = problems_of(path)
    assert problems[0].line == 2
    assert problems[0].message.startswith("running the spec failed: RuntimeError: inventory down xxx")
    assert len(problems[0].message) < 250 and "\n" not in problems[0].message


def test_python_spec_problems_come_before_the_failure_they_caused(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Gpus

        gpus = Gpus(model="A100-SXM4-80GB", count="eight")
        total = gpus.count + 1
        """, "spec.py")
    assert [(p.path, p.message, p.line) for p in problems_of(path)] == [
        ("Gpus(...).count", "must be a whole number; got 'eight'", 3)]


# --- secrets ---------------------------------------------------------------------------------------

SECRET = "hunter2-s3cr3t"


def with_receiver(receiver: dict):
    def change(d):
        d["alertmanager"] = {"receivers": [{"name": "r", **receiver}], "routing": {"by_severity": {"critical": "r"}}}
    return change


def with_remote_write(entry: dict):
    def change(d):
        d["clusters"][0]["prometheus"] = {"address": "prom:9090", "remote_write": [entry]}
    return change


SECRETS = [
    ("prometheus-url-with-credentials", set_grafana(prometheus_url=f"http://admin:{SECRET}@prometheus:9090"),
     "grafana.prometheus_url", "a URL here must not carry credentials (user:password@)"),
    ("grafana-url-with-credentials", set_links(grafana_url=f"https://viewer:{SECRET}@grafana.example"),
     "links.grafana_url", "Grafana's data source: basicAuth with secureJsonData"),
    ("runbook-url-with-a-token-as-user", set_links(runbook_url=f"https://{SECRET}@wiki.example/runbooks"),
     "links.runbook_url", "must not carry credentials"),
    ("webhook-url-with-credentials", with_receiver({"webhook": {"url": f"https://bot:{SECRET}@hooks.example/x"}}),
     "alertmanager.receivers[0].webhook.url", "a webhook URL must not carry credentials"),
    ("webhook-url-with-a-token-not-a-url", with_receiver({"webhook": {"url": f"hooks.example/services/{SECRET}"}}),
     "alertmanager.receivers[0].webhook.url", "a webhook URL is not an http(s) URL"),
    ("webhook-url-not-text", with_receiver({"webhook": {"url": {"token": SECRET}}}),
     "alertmanager.receivers[0].webhook.url", "the value is not shown, as it may hold a secret"),
    ("inline-basic-auth-password", with_receiver({"webhook": {"url": "https://hooks.example/x",
                                                              "basic_auth": {"username": "u", "password": SECRET}}}),
     "alertmanager.receivers[0].webhook.basic_auth.password", "'password' would put a secret into the spec"),
    ("inline-bearer-token", with_receiver({"webhook": {"url": "https://hooks.example/x", "bearer_token": SECRET}}),
     "alertmanager.receivers[0].webhook.bearer_token", "give bearer_token_file instead"),
    ("smarthost-with-credentials", with_receiver({"email": {"to": "a@x", "from": "b@x",
                                                            "smarthost": f"user:{SECRET}@smtp.example:587"}}),
     "alertmanager.receivers[0].email.smarthost", "'***@smtp.example:587' is not host:port"),
    ("remote-write-with-credentials", with_remote_write({"url": f"https://u:{SECRET}@lts.example/push"}),
     "clusters[0].prometheus.remote_write[0].url", "a remote_write URL must not carry credentials"),
    ("remote-write-not-a-url", with_remote_write({"url": f"lts.example/push?token={SECRET}"}),
     "clusters[0].prometheus.remote_write[0].url", "not quoted here, as it may hold a secret"),
]


@pytest.mark.parametrize("case_id, change, path, fragment", SECRETS, ids=[c[0] for c in SECRETS])
def test_no_message_repeats_a_secret(tmp_path, case_id, change, path, fragment):
    problems = problems_after(tmp_path, change)
    assert path in [p.path for p in problems], problems
    assert fragment in next(p.message for p in problems if p.path == path)
    assert SECRET not in str(SpecError("spec.yaml", problems))


# --- through the CLI: a clean line, a non-zero exit, nothing written -------------------------------

@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: write_bytes(tmp, b"clusters:\n  - name: caf\xe9\n"), "not UTF-8: byte 0xe9 at offset 23"),
    (lambda tmp: write_text(tmp, billion_laughs(6), "spec.yaml"), "aliases expand the document by 2345661 values"),
    (lambda tmp: write_text(tmp, "clusters: " + "[" * 50_000 + "]" * 50_000 + "\n", "spec.yaml"),
     "the document nests more than 64 levels deep"),
    (lambda tmp: write_yaml(tmp, {**base(), "grafana": {"prometheus_url": f"http://a:{SECRET}@p:9090"}}),
     "grafana.prometheus_url: a URL here must not carry credentials"),
], ids=["latin-1", "alias-bomb", "deep-nesting", "credentials"])
def test_cli_refuses_hostile_input_in_one_line_and_writes_nothing(tmp_path, make, fragment):
    spec = make(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr[:500]
    assert "Traceback" not in _all_output(result) and SECRET not in _all_output(result)
    assert not out.exists()

