"""Invalid specs: every problem is reported with its exact path and a message a user can act on.

Each case starts from BASE (one cluster, one host with 8 x A100-SXM4-80GB), applies one change,
writes the result as YAML and expects exactly one problem at an exact path.
"""

from __future__ import annotations

import copy
import textwrap
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
              "grafana, links, global, kubernetes")
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


def set_teams(*teams):
    return lambda d: d.__setitem__("teams", list(teams))


A100_80_PROFILES = "1g.10gb, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb"

# (id, change, exact path, fragments the message must contain)
CASES = [
    # --- GPU model, unknown keys
    ("unknown-gpu-model", set_second_host_model, "hosts[1].gpus.model",
     ["unknown GPU model 'A100'", "known: A100-SXM4-80GB, A100-SXM4-40GB", "H100-SXM5-80GB", "L40S"]),
    ("unknown-key-top-level", lambda d: d.update(hostz=[]), "hostz",
     [f"unknown key 'hostz'; allowed: {FLEET_KEYS}"]),
    ("unknown-key-cluster", lambda d: d["clusters"][0].update(region="east"), "clusters[0].region",
     ["unknown key 'region'; allowed: name, labels"]),
    ("unknown-key-host", lambda d: host(d).update(adress="10.0.0.1"), "hosts[0].adress",
     [f"unknown key 'adress'; allowed: {HOST_KEYS}"]),
    ("unknown-key-gpus", lambda d: gpus(d).update(memory="80GB"), "hosts[0].gpus.memory",
     ["unknown key 'memory'; allowed: model, count, mig"]),
    ("unknown-key-mig", lambda d: gpus(d).update(mig={"profiles": ["7g.80gb"], "gpu": [0]}),
     "hosts[0].gpus.mig.gpu", ["unknown key 'gpu'; allowed: profiles, gpus"]),
    ("unknown-key-thresholds-model", set_thresholds(MODEL, gpu_temp_warn=80),
     f"thresholds.{MODEL}.gpu_temp_warn",
     ["unknown key 'gpu_temp_warn'; allowed: gpu_temp_warning, gpu_temp_critical", "power_warning_ratio"]),
    ("unknown-key-alert", set_alert("GPUThermalWarning", duration="5m"), "alerts.GPUThermalWarning.duration",
     ["unknown key 'duration'; allowed: enabled, severity, for, labels"]),
    ("unknown-key-prometheus", set_prometheus(scrape_intervall="30s"), "prometheus.scrape_intervall",
     [f"unknown key 'scrape_intervall'; allowed: {PROMETHEUS_KEYS}"]),
    # --- required keys, types, ranges
    ("missing-clusters", lambda d: d.pop("clusters"), "clusters", ["required key missing"]),
    ("missing-hosts", lambda d: d.pop("hosts"), "hosts", ["required key missing"]),
    ("missing-host-cluster", lambda d: host(d).pop("cluster"), "hosts[0].cluster", ["required key missing"]),
    ("missing-gpu-count", lambda d: gpus(d).pop("count"), "hosts[0].gpus.count", ["required key missing"]),
    ("empty-clusters", lambda d: d.update(clusters=[]), "clusters", ["at least 1 item", "(got [])"]),
    ("hosts-not-a-list", lambda d: d.update(hosts="h1"), "hosts", ["valid list", "(got 'h1')"]),
    ("count-not-an-integer", lambda d: gpus(d).update(count="eight"), "hosts[0].gpus.count",
     ["valid integer", "(got 'eight')"]),
    ("count-zero", lambda d: gpus(d).update(count=0), "hosts[0].gpus.count",
     ["greater than or equal to 1", "(got 0)"]),
    ("count-65", lambda d: gpus(d).update(count=65), "hosts[0].gpus.count",
     ["less than or equal to 64", "(got 65)"]),
    ("exporter-port-out-of-range", lambda d: host(d).update(exporter_port=70000), "hosts[0].exporter_port",
     ["less than or equal to 65535", "(got 70000)"]),
    ("unsupported-version", lambda d: d.update(version=2), "version", ["Input should be 1", "(got 2)"]),
    ("unknown-exporter-kind", lambda d: d["clusters"][0].update(exporter={"kind": "nvml"}),
     "clusters[0].exporter.kind", ["'gpuobs', 'dcgm-exporter' or 'nvidia_gpu_exporter'", "(got 'nvml')"]),
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
     "gpu_models[0].power_limit_watts", ["greater than 0", "(got -5)"]),
    ("bad-service-discovery", set_prometheus(service_discovery="consul"), "prometheus.service_discovery",
     ["'static' or 'file_sd'", "(got 'consul')"]),
    ("label-value-not-a-string", lambda d: d["clusters"][0].update(labels={"region": 1}),
     "clusters[0].labels.region", ["valid string", "(got 1)"]),
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
    ("host-name-not-a-string", lambda d: host(d).update(name=101), "hosts[0].name", ["valid string", "(got 101)"]),
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
     ["greater than or equal to 0", "(got -1)"]),
    ("mig-no-profiles", set_mig(MODEL, 8, []), "hosts[0].gpus.mig.profiles", ["at least 1 item"]),
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
     f"thresholds.{MODEL}.gpu_temp_critical", ["less than or equal to 150", "(got 200)"]),
    ("threshold-ratio-zero", set_thresholds(MODEL, memory_used_warning_ratio=0),
     f"thresholds.{MODEL}.memory_used_warning_ratio", ["greater than 0", "(got 0)"]),
    # --- alerts, alertmanagers
    ("unknown-alert-name", set_alert("GPUOnFire", enabled=False), "alerts.GPUOnFire",
     ["unknown alert 'GPUOnFire'; known: GPUThermalWarning, GPUThermalCritical"]),
    ("bad-alert-severity", set_alert("GPUThermalWarning", severity="page"), "alerts.GPUThermalWarning.severity",
     ["Input should be 'critical', 'warning' or 'info'", "(got 'page')"]),
    ("alert-enabled-not-a-bool", set_alert("GPUThermalWarning", enabled="sometimes"),
     "alerts.GPUThermalWarning.enabled", ["valid boolean", "(got 'sometimes')"]),
    ("alertmanager-with-scheme", set_prometheus(alertmanagers=["http://am:9093"]), "prometheus.alertmanagers[0]",
     ["'http://am:9093' must be host:port, without a scheme"]),
    ("alertmanager-without-port", set_prometheus(alertmanagers=["localhost:9093", "am"]),
     "prometheus.alertmanagers[1]", ["'am' must be host:port"]),
    ("scrape-timeout-longer-than-interval", set_prometheus(scrape_interval="5s", scrape_timeout="10s"),
     "prometheus.scrape_timeout", ["10s is longer than scrape_interval 5s"]),
    ("exporter-stale-within-a-scrape", set_prometheus(scrape_interval="30s", exporter_stale_after="20s"),
     "prometheus.exporter_stale_after", ["20s is shorter than scrape_interval 30s"]),
    ("host-label-clobbers-cluster", set_prometheus(host_label="cluster"), "prometheus.host_label",
     ["'cluster' is a label gpuobs or the exporter sets already"]),
    ("host-label-clobbers-exporter-label", set_prometheus(host_label="gpu"), "prometheus.host_label",
     ["'gpu' is a label gpuobs or the exporter sets already"]),
    ("gpu-count-boolean", lambda d: host(d)["gpus"].update(count=True), "hosts[0].gpus.count",
     ["Input should be a valid integer"]),
    ("exporter-port-equals-node-exporter-port", lambda d: host(d).update(exporter_port=9100),
     "hosts[0].exporter_port", ["port 9100 is also the host's node_exporter_port"]),
    ("mig-gpu-index-twice", lambda d: host(d)["gpus"].update(mig={"profiles": ["7g.80gb"], "gpus": [0, 0]}),
     "hosts[0].gpus.mig.gpus[1]", ["GPU index 0 is listed twice"]),
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
    data = base()
    change(data)
    problems = problems_of(write_yaml(tmp_path, data))
    assert [p.path for p in problems] == [path], problems
    for fragment in fragments:
        assert fragment in problems[0].message


# --- whole-file problems ---------------------------------------------------------------------------

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
    assert set(by_path) == {"hosts[0].gpus.model", "hosts[1].gpus.count", "prometheus.scrape_interval", "colour"}
    assert "unknown GPU model 'A100'" in by_path["hosts[0].gpus.model"]
    assert "greater than or equal to 1" in by_path["hosts[1].gpus.count"]
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
    assert f"{path}: hosts[0].adress: unknown key 'adress'; allowed: {HOST_KEYS} (line 7)" in message
    assert "hosts[0].gpus.count: " in message and "(line 10)" in message


def test_yaml_line_of_a_cross_check_error_inside_a_host(tmp_path):
    text = HOST_TYPO.replace("        adress: 10.0.0.1\n", "").replace("eight", "8")
    path = write_text(tmp_path, text, "spec.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [(p.path, p.line) for p in info.value.problems] == [("hosts[0].cluster", 6)]
    assert str(info.value) == f"{path}: hosts[0].cluster: unknown cluster 'c9'; known: c1 (line 6)"


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
    by_path = {p.path: p.message for p in problems}
    # A Python spec's own gpu_models are known only once its Fleet exists, so model names are
    # checked after construction: the shape error comes first, then the model.
    assert set(by_path) == {"hosts[0].gpus.colour"}
    assert by_path["hosts[0].gpus.colour"] == "unknown key 'colour'; allowed: model, count, mig"
    assert all(p.line is None for p in problems)
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
    assert [(p.path, p.message) for p in problems] == [
        ("Gpus(...).colour", "unknown key 'colour'; allowed: model, count, mig")]


def test_python_spec_changed_after_construction_is_validated_again(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Cluster, Fleet, Gpus, Host

        fleet = Fleet(clusters=[Cluster(name="c1")],
                      hosts=[Host(name="h1", cluster="c1", gpus=Gpus(model="A100-SXM4-80GB", count=8))])
        fleet.hosts[0].gpus.count = 0
        """, "spec.py")
    problems = problems_of(path)
    assert [p.path for p in problems] == ["hosts[0].gpus.count"]
    assert "greater than or equal to 1" in problems[0].message


def test_python_spec_cross_check_problem(tmp_path):
    path = write_text(tmp_path, """
        from gpuobs.spec import Fleet

        fleet = Fleet(clusters=[{"name": "c1"}],
                      hosts=[{"name": "h1", "cluster": "c2", "gpus": {"model": "A100-SXM4-80GB", "count": 8}}])
        """, "spec.py")
    problems = problems_of(path)
    assert [(p.path, p.message, p.line) for p in problems] == [
        ("hosts[0].cluster", "unknown cluster 'c2'; known: c1", None)]


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
