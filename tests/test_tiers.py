"""Several Prometheus servers: bad input is refused with its path; each cluster's configuration
scrapes only its own hosts; the global tier federates exactly what its rules and the fleet
overview read; the generated promtool tests of the fleet rules catch a broken one."""

import json
import re

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, assert_one_problem, changed, needs
from gpuobs import tools
from gpuobs.catalog import GPUOBS_PROFILE
from gpuobs.cli import main
from gpuobs.errors import ToolError
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.federation import match_selectors
from gpuobs.generators.grafana import all_queries
from gpuobs.generators.rules import federated_names, fleet_rules, global_inventory_rules
from gpuobs.spec import load_spec, schema
from gpuobs.validate import check_with_tools

GPUS = {"model": "A100-SXM4-80GB", "count": 8}
BASE = {
    "name": "tiers",
    "clusters": [{"name": "c1", "prometheus": {"address": "prom-c1:9090", "replicas": ["a", "b"]}},
                 {"name": "c2", "prometheus": {"address": "prom-c2:9090", "remote_write": [
                     {"url": "https://lts.example/api/v1/push", "bearer_token_file": "/run/secrets/lts",
                      "queue": {"max_shards": 10, "batch_send_deadline": "5s"}}]}}],
    "hosts": [{"name": "h1", "cluster": "c1", "address": "10.0.0.1", "gpus": GPUS},
              {"name": "h2", "cluster": "c1", "address": "10.0.0.2", "gpus": GPUS},
              {"name": "h3", "cluster": "c2", "address": "10.0.0.3", "gpus": {"model": "L4", "count": 2}}],
    "prometheus": {"external_labels": {"fleet": "f"}},
    "global": {"scrape_interval": "30s"},
}


def c(data, i=0):
    return data["clusters"][i]["prometheus"]


def rw(data, i=0):
    return c(data, 1)["remote_write"][i]


CASES = [
    ("remote-write-url-not-http", lambda d: rw(d).update(url="ftp://lts.example/push"),
     "clusters[1].prometheus.remote_write[0].url", "a remote_write URL is not an http(s) URL"),
    ("remote-write-url-without-scheme", lambda d: rw(d).update(url="lts.example/api/v1/push"),
     "clusters[1].prometheus.remote_write[0].url", "is not an http(s) URL"),
    ("remote-write-url-with-credentials", lambda d: rw(d).update(url="https://u:pw@lts.example/push"),
     "clusters[1].prometheus.remote_write[0].url",
     "must not carry credentials (user:password@); use basic_auth or bearer_token_file"),
    ("inline-bearer-token", lambda d: rw(d).update(bearer_token="s3cret"),
     "clusters[1].prometheus.remote_write[0].bearer_token",
     "'bearer_token' would put a secret into the spec; write it to a file and give bearer_token_file instead"),
    ("inline-basic-auth-password", lambda d: (rw(d).pop("bearer_token_file"),
                                              rw(d).update(basic_auth={"username": "u", "password": "pw",
                                                                                "password_file": "/p"})),
     "clusters[1].prometheus.remote_write[0].basic_auth.password", "give password_file instead"),
    ("inline-secret-in-global-remote-write", lambda d: d["global"].update(
        remote_write=[{"url": "https://lts.example/push", "credentials": "s3cret"}]),
     "global.remote_write[0].credentials", "give bearer_token_file instead"),
    ("basic-auth-and-bearer-token", lambda d: rw(d).update(basic_auth={"username": "u", "password_file": "/p"}),
     "clusters[1].prometheus.remote_write[0].bearer_token_file", "give basic_auth or bearer_token_file, not both"),
    ("cluster-without-prometheus-under-a-global-tier", lambda d: d["clusters"][1].pop("prometheus"),
     "clusters[1].prometheus.address", "required with a global tier: the global Prometheus federates from this"),
    ("cluster-without-address-under-a-global-tier", lambda d: c(d, 0).pop("address"),
     "clusters[0].prometheus.address", "required with a global tier"),
    ("address-with-scheme", lambda d: c(d, 0).update(address="http://prom-c1:9090"),
     "clusters[0].prometheus.address", "'http://prom-c1:9090' is not host:port"),
    ("address-without-port", lambda d: c(d, 0).update(address="prom-c1"),
     "clusters[0].prometheus.address", "is not host:port"),
    ("two-clusters-one-address", lambda d: c(d, 1).update(address="prom-c1:9090"),
     "clusters[1].prometheus.address", "'prom-c1:9090' is also the Prometheus of cluster 'c1'"),
    ("replica-listed-twice", lambda d: c(d, 0).update(replicas=["a", "a"]),
     "clusters[0].prometheus.replicas[1]", "replica 'a' is listed twice"),
    ("external-label-cluster", lambda d: c(d, 0).update(external_labels={"cluster": "x"}),
     "clusters[0].prometheus.external_labels.cluster", "label 'cluster' is set by gpuobs on every cluster's"),
    ("fleet-external-label-replica", lambda d: d["prometheus"]["external_labels"].update(replica="x"),
     "prometheus.external_labels.replica", "label 'replica' is set by gpuobs"),
    ("min-shards-above-max", lambda d: rw(d)["queue"].update(min_shards=20),
     "clusters[1].prometheus.remote_write[0].queue.min_shards", "min_shards 20 is above max_shards 10"),
    ("queue-deadline-not-a-duration", lambda d: rw(d)["queue"].update(batch_send_deadline="5 s"),
     "clusters[1].prometheus.remote_write[0].queue.batch_send_deadline", "is not a Prometheus duration"),
    ("unknown-key-in-remote-write", lambda d: rw(d).update(headers={"X": "y"}),
     "clusters[1].prometheus.remote_write[0].headers",
     "unknown key 'headers'; allowed: url, basic_auth, bearer_token_file, queue"),
    ("unknown-key-in-global", lambda d: d["global"].update(address="g:9090"), "global.address",
     "unknown key 'address'; allowed: scrape_interval, evaluation_interval, external_labels, remote_write"),
]


def write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_base_is_valid(tmp_path):
    fleet = load_spec(write(tmp_path, BASE))
    assert fleet.global_.scrape_interval == "30s" and fleet.clusters[0].prometheus.replicas == ["a", "b"]


@pytest.mark.parametrize("name, change, path, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_tier_sections(tmp_path, name, change, path, fragment):
    assert_one_problem(tmp_path, BASE, change, path, fragment)


def test_cli_refuses_an_inline_secret_with_file_path_and_line_and_writes_nothing(tmp_path):
    spec = write(tmp_path, changed(BASE, lambda d: rw(d).update(bearer_token="s3cret")))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)])
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "bearer_token:" in text)
    assert (f"{spec}: clusters[1].prometheus.remote_write[0].bearer_token: 'bearer_token' would put a secret "
            f"into the spec; write it to a file and give bearer_token_file instead (line {line})") in result.output
    assert "s3cret" not in result.output
    assert not out.exists()


def test_python_spec_builds_the_tiers_from_classes(tmp_path):
    path = tmp_path / "fleet_spec.py"
    path.write_text(
        "from gpuobs.spec import Cluster, ClusterPrometheus, Fleet, GlobalTier, Gpus, Host, RemoteWrite\n"
        "fleet = Fleet(clusters=[Cluster(name='c1', prometheus=ClusterPrometheus(address='p:9090', remote_write=[\n"
        "                  RemoteWrite(url='https://lts.example/push', bearer_token_file='/t')]))],\n"
        "              hosts=[Host(name='h1', cluster='c1', gpus=Gpus(model='L4', count=1))],\n"
        "              global_=GlobalTier())\n")
    model = load_model(path)
    assert model.global_tier is not None and model.servers[0].remote_write[0].bearer_token_file == "/t"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tiers")
    model = load_model(write(tmp_path, BASE))
    return model, render(model)


def test_a_prometheus_per_cluster_and_replica_and_a_global_one(files):
    _, out = files
    configs = sorted(p for p in out if p.startswith("prometheus/") and "/prometheus" in p[10:])
    assert configs == ["prometheus/clusters/c1/prometheus-a.yml", "prometheus/clusters/c1/prometheus-b.yml",
                       "prometheus/clusters/c2/prometheus.yml", "prometheus/global/prometheus.yml"]
    assert "prometheus/prometheus.yml" not in out and "prometheus/rules/inventory.yml" not in out
    a, b = (yaml.safe_load(out[f"prometheus/clusters/c1/prometheus-{r}.yml"]) for r in "ab")
    assert a["global"]["external_labels"] == {"cluster": "c1", "fleet": "f", "replica": "a"}
    assert b["global"]["external_labels"]["replica"] == "b"
    assert a["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    assert a["rule_files"] == ["rules/inventory.yml", "../../rules/recording.yml", "../../rules/alerts.yml"]
    scraped = [g["labels"]["host"] for g in a["scrape_configs"][0]["static_configs"]]
    assert scraped == ["h1", "h2"], "a cluster's Prometheus scrapes its own hosts only"
    inventory = yaml.safe_load(out["prometheus/clusters/c1/rules/inventory.yml"])
    assert [r["labels"]["host"] for r in inventory["groups"][0]["rules"]] == ["h1", "h2"]


def test_remote_write_reads_its_secret_from_a_file(files):
    _, out = files
    c2 = yaml.safe_load(out["prometheus/clusters/c2/prometheus.yml"])
    assert c2["remote_write"] == [{"url": "https://lts.example/api/v1/push",
                                   "authorization": {"type": "Bearer", "credentials_file": "/run/secrets/lts"},
                                   "queue_config": {"max_shards": 10, "batch_send_deadline": "5s"}}]
    assert "alert_relabel_configs" not in c2["alerting"], "no replicas, nothing to drop"
    assert "remote_write" not in yaml.safe_load(out["prometheus/clusters/c1/prometheus-a.yml"])


def test_global_tier_federates_cluster_level_rules_only(files):
    model, out = files
    config = yaml.safe_load(out["prometheus/global/prometheus.yml"])
    assert config["rule_files"] == ["rules/inventory.yml", "../rules/fleet.yml"]
    assert config["global"]["scrape_interval"] == "30s" and "alerting" not in config
    federate = config["scrape_configs"][0]
    assert federate["honor_labels"] is True and federate["honor_timestamps"] is False
    assert federate["metrics_path"] == "/federate"
    assert [g["targets"] for g in federate["static_configs"]] == [["prom-c1:9090"], ["prom-c2:9090"]]
    assert federate["metric_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    names = [re.fullmatch(r'\{__name__="([^"]+)"\}', m).group(1) for m in federate["params"]["match[]"]]
    assert names == federated_names(model) and all(n.startswith("cluster:") for n in names)


RECORDED = re.compile(r"\b[a-z]+:[a-z0-9_]+:[a-z0-9_]+\b")


def test_the_global_tier_has_everything_its_rules_and_the_fleet_overview_read(files):
    model, out = files
    at_global = set(federated_names(model)) | {r["record"] for r in global_inventory_rules(model)}
    at_global |= {r["record"] for r in fleet_rules(model)}
    overview = json.loads(out["grafana/dashboards/fleet-overview.json"])
    exprs = [e for _, e in all_queries(overview)] + [r["expr"] for r in fleet_rules(model)]
    read = {name for e in exprs for name in RECORDED.findall(e)}
    assert read and read <= at_global, read - at_global
    metrics = set(GPUOBS_PROFILE.metrics.values())
    assert not [e for e in exprs if any(m in e for m in metrics)], "no per-GPU exporter series at the global tier"
    assert len(match_selectors(model)) == len(federated_names(model))


def test_a_fleet_with_one_prometheus_keeps_its_layout(tmp_path):
    data = changed(BASE, lambda d: (d.pop("global"), [cl.pop("prometheus") for cl in d["clusters"]]))
    model = load_model(write(tmp_path, data))
    out = render(model)
    assert not model.per_cluster
    assert sorted(p for p in out if p.startswith("prometheus/")) == [
        "prometheus/prometheus.yml", "prometheus/rules/alerts.yml", "prometheus/rules/inventory.yml",
        "prometheus/rules/recording.yml", "prometheus/tests/alerts.yml", "prometheus/tests/recording.yml"]
    groups = [g["name"] for g in yaml.safe_load(out["prometheus/rules/recording.yml"])["groups"]]
    assert groups[-1] == "gpuobs.fleet"


def test_per_cluster_servers_without_a_global_tier_still_get_the_fleet_rules(tmp_path):
    model = load_model(write(tmp_path, changed(BASE, lambda d: d.pop("global"))))
    out = render(model)
    assert "prometheus/rules/fleet.yml" in out and "prometheus/tests/fleet.yml" in out
    assert not [p for p in out if p.startswith("prometheus/global/")]


@needs("promtool")
def test_per_cluster_output_passes_promtool_and_its_fleet_tests_catch_a_broken_rule(tmp_path, files):
    model, out = files
    folder = tmp_path / model.name
    write_tree(folder, out)
    said = "".join(check_with_tools(folder))
    assert said.count("SUCCESS") >= 4 + 1, said  # four configurations, then the rules
    # The alert tests are the same as with one Prometheus (the committed fleet output runs them all).
    fleet_tests = folder / "prometheus" / "tests" / "fleet.yml"
    assert "SUCCESS" in tools.promtool_test_rules([fleet_tests, folder / "prometheus" / "tests" / "recording.yml"])
    rules = folder / "prometheus" / "rules" / "fleet.yml"
    # Healthy GPUs counted as all reporting ones: the alerting GPU would go unnoticed.
    broken = rules.read_text().replace("sum(cluster:gpus_healthy:count)", "sum(cluster:gpus:count)")
    assert broken != rules.read_text()
    rules.write_text(broken)
    with pytest.raises(ToolError, match="fleet:gpus_healthy:count"):
        tools.promtool_test_rules([fleet_tests])


def test_every_tier_key_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert "## More than one Prometheus" in readme
    for cls in (schema.ClusterPrometheus, schema.GlobalTier, schema.RemoteWrite, schema.RemoteWriteQueue):
        for name, field in cls.model_fields.items():
            assert f"`{field.alias or name}`" in readme, f"{cls.__name__}.{field.alias or name}"
