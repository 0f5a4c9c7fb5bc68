"""The kubernetes/ folder: every object valid for its API (Kubernetes' own schemas, the
prometheus-operator CRDs), the rules and dashboards the same as the plain files, the Alertmanager
Secret reading only the declared Secrets, kustomize taking the folder as it is, and the monitor's
relabelings giving a real Prometheus the static config's target labels."""

from __future__ import annotations

import copy
import re
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import REFERENCE, ROOT, changed, needs
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.kubernetes import NODE_NAME, SECRETS_DIR
from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import cluster_inventory, cluster_rule_files
from gpuobs.render import header
from gpuobs.stack import PrometheusServer, free_port
from gpuobs.tools import amtool_check_config, available

# The oldest Kubernetes the objects are checked against, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
FLEET = ROOT / "generated" / "fleet"
SPEC = ROOT / "specs" / "fleet.yaml"
# The fleet runs a Prometheus per cluster, so each cluster gets a folder; most checks read one.
CLUSTER = "infer-west"  # its MIG host makes the exporter root with SYS_ADMIN
KUBE = FLEET / "kubernetes" / CLUSTER
OPERATOR_KINDS = ("PrometheusRule", "ServiceMonitor", "PodMonitor")


def objects(folder: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))
            if p.name != "kustomization.yaml"}


@dataclass(frozen=True)
class Output:
    name: str
    folder: Path  # generated kubernetes/ folder
    spec: dict  # the spec's kubernetes section


@pytest.fixture(scope="module")
def variant(tmp_path_factory) -> Output:
    """The fleet spec with the other choices: PodMonitor, its own namespace, no runtime class,
    per-process series instead of pods."""
    spec = yaml.safe_load(SPEC.read_text())
    k = spec["kubernetes"]
    k.update(namespace="gpu-monitoring", create_namespace=True, monitor="PodMonitor",
             prometheus_labels={"prometheus": "gpu"}, dashboard_labels={"dashboards": "gpu"})
    k["exporter"].pop("runtime_class")
    k["exporter"].update(mig_monitor=False, pod_resources=False, process_metrics=True)
    k["exporter"].update(node_selector={"node.kubernetes.io/gpu": "a100"},
                         tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}],
                         resources={"limits": {"memory": "512Mi"}})
    path = tmp_path_factory.mktemp("variant") / "variant.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = path.parent / "out"
    write_tree(out / "variant", render(load_model(path)))
    return Output("variant", out / "variant" / "kubernetes" / CLUSTER, k)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Output:
    """The fleet spec with one host of the cluster on the GPU Operator's dcgm-exporter."""
    spec = yaml.safe_load(SPEC.read_text())
    host = next(h for h in spec["hosts"] if h["cluster"] == CLUSTER and "mig" not in h["gpus"])
    host["exporter"] = {"kind": "dcgm-exporter", "counters": "gpuobs"}
    path = tmp_path_factory.mktemp("mixed") / "mixed.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = path.parent / "out"
    write_tree(out / "mixed", render(load_model(path)))
    return Output("mixed", out / "mixed" / "kubernetes" / CLUSTER, spec["kubernetes"])


@pytest.fixture(params=["fleet", "variant", "mixed"])
def output(request, variant, mixed) -> Output:
    if request.param == "fleet":
        return Output("fleet", KUBE, yaml.safe_load(SPEC.read_text())["kubernetes"])
    return variant if request.param == "variant" else mixed


def test_a_dcgm_exporter_host_is_scraped_from_the_gpu_operator_and_gets_its_counters(mixed):
    spec = yaml.safe_load((mixed.folder.parents[3] / "mixed.yaml").read_text())
    dcgm_host = next(h["name"] for h in spec["hosts"] if "exporter" in h)
    docs = objects(mixed.folder)
    monitor = docs["dcgm-exporter-servicemonitor.yaml"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "nvidia-dcgm-exporter"}}
    relabel = monitor["spec"]["endpoints"][0]["relabelings"]
    assert {"action": "replace", "targetLabel": "job", "replacement": "dcgm-exporter"} in relabel
    assert any(r.get("regex") == dcgm_host and r.get("targetLabel") == "gpu_model" for r in relabel)
    # gpuobs-exporter stays off the node dcgm-exporter already reports.
    affinity = docs["exporter-daemonset.yaml"]["spec"]["template"]["spec"]["affinity"]
    term = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [dcgm_host]}]
    configmap = yaml.safe_load((mixed.folder / "gpu-operator" / "dcgm-counters-configmap.yaml").read_text())
    assert configmap["metadata"]["namespace"] == "gpu-operator"
    csv = configmap["data"]["dcgm-metrics.csv"]
    assert csv == (mixed.folder.parents[1] / "dcgm-exporter" / "dcgm-exporter.csv").read_text()
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, counter," in csv and "DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge," in csv
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(configmap, version, strict=True)


@cache
def crd_schema(kind: str) -> dict:
    """The served v1 schema of a CRD, closed: a field the schema does not know fails, as the
    API server would silently prune it."""
    path = REFERENCE / "prometheus-operator" / f"monitoring.coreos.com_{kind.lower()}s.yaml"
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"])
    return _closed(version["schema"]["openAPIV3Schema"])


def _closed(schema):
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _closed(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema["additionalProperties"] = False
    return schema


def test_the_fleet_generates_these_objects():
    kinds = {name: (o["kind"], o["metadata"]["name"]) for name, o in objects(KUBE).items()}
    assert kinds == {
        "alertmanager-config.yaml": ("Secret", "alertmanager-gpuobs"),
        "dashboard-custom-training-capacity.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-custom-training-capacity"),
        "dashboard-efficiency.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-efficiency"),
        "dashboard-fleet-overview.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-fleet-overview"),
        "dashboard-gpu-detail.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-gpu-detail"),
        "dashboard-health.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-health"),
        "dashboard-monitoring.yaml": ("ConfigMap", "gpuobs-fleet-dashboard-monitoring"),
        "exporter-daemonset.yaml": ("DaemonSet", "gpuobs-exporter"),
        "exporter-service.yaml": ("Service", "gpuobs-exporter"),
        "exporter-servicemonitor.yaml": ("ServiceMonitor", "gpuobs-exporter"),
        "prometheusrule-alerts.yaml": ("PrometheusRule", "gpuobs-fleet-alerts"),
        "prometheusrule-inventory.yaml": ("PrometheusRule", "gpuobs-fleet-inventory"),
        "prometheusrule-recording.yaml": ("PrometheusRule", "gpuobs-fleet-recording"),
    }
    assert not (ROOT / "generated" / "demo" / "kubernetes").exists(), "a spec without a kubernetes section"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_kinds_validate_against_kubernetes_schemas(output, version):
    checked = set()
    for name, document in objects(output.folder).items():
        if document["kind"] in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
        checked.add(document["kind"])
    assert {"DaemonSet", "ConfigMap", "Secret"} <= checked


def test_operator_kinds_validate_against_the_crds(output):
    checked = set()
    for name, document in objects(output.folder).items():
        if document["kind"] not in OPERATOR_KINDS:
            continue
        errors = list(jsonschema.Draft7Validator(crd_schema(document["kind"])).iter_errors(document))
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        checked.add(document["kind"])
    assert checked in ({"PrometheusRule", "ServiceMonitor"}, {"PrometheusRule", "PodMonitor"})


def test_crd_check_catches_a_misspelt_field():
    monitor = yaml.safe_load((KUBE / "exporter-servicemonitor.yaml").read_text())
    monitor["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
    errors = list(jsonschema.Draft7Validator(crd_schema("ServiceMonitor")).iter_errors(monitor))
    assert any("scrapeTimout" in e.message for e in errors)


def test_kustomization_lists_exactly_the_object_files(output):
    folder = output.folder
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    # gpu-operator/ holds the counters ConfigMap for another namespace, applied on its own.
    files = sorted(p.name for p in folder.iterdir() if p.name != "kustomization.yaml" and p.is_file())
    assert kustomization["resources"] == files
    namespaced = [o for o in objects(folder).values() if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {kustomization["namespace"], output.spec["namespace"]}


@needs("kubectl")
def test_kustomize_builds_the_folder(output):
    folder = output.folder
    built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    documents = list(yaml.safe_load_all(built.stdout))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in documents) == \
        sorted((o["kind"], o["metadata"]["name"]) for o in objects(folder).values())
    if any(d["kind"] == "Namespace" for d in documents):
        assert documents[0]["kind"] == "Namespace", "kustomize creates the namespace first"


def _groups_block(text: str) -> str:
    """The lines of spec.groups in a PrometheusRule file, two spaces of indentation removed. The
    writer indents one nesting level by two spaces, also inside block scalars, and leaves blank
    lines of a block scalar empty, so a dedent is the whole difference."""
    lines = text.splitlines(keepends=True)
    start = lines.index("spec:\n") + 1
    assert lines[start] == "  groups:\n" and all(line == "\n" or line.startswith("  ") for line in lines[start:]), \
        "spec.groups must close the document"
    return "".join(line[2:] if line != "\n" else line for line in lines[start:])


def rule_file(stem: str) -> str:
    """The plain rule file a cluster's PrometheusRule wraps (relative to the fleet's folder)."""
    return next(path for path in cluster_rule_files(CLUSTER) if path.endswith(f"/{stem}.yml"))


def test_each_cluster_folder_holds_its_own_nodes_and_inventory():
    model = load_model(SPEC)
    for cluster in model.clusters:
        folder = FLEET / "kubernetes" / cluster
        monitor = yaml.safe_load((folder / "exporter-servicemonitor.yaml").read_text())
        regexes = {r["regex"] for r in monitor["spec"]["endpoints"][0]["relabelings"]
                   if r.get("targetLabel") == "cluster"}
        assert regexes == {"|".join(h.name for h in model.hosts if h.cluster == cluster).replace(".", "\\.")}
        inventory = yaml.safe_load((folder / "prometheusrule-inventory.yaml").read_text())["spec"]
        assert inventory == yaml.safe_load((FLEET / cluster_inventory(cluster)).read_text())
    assert sorted(p.name for p in (FLEET / "kubernetes").iterdir()) == sorted(model.clusters)
    pod = yaml.safe_load((FLEET / "kubernetes" / "train-east" / "exporter-daemonset.yaml").read_text())
    (container,) = pod["spec"]["template"]["spec"]["containers"]
    assert "add" not in container["securityContext"]["capabilities"], "no MIG host: no SYS_ADMIN"


@pytest.mark.parametrize("stem", ["inventory", "recording", "alerts"])
def test_prometheus_rules_are_the_plain_rule_files(stem):
    """Byte for byte: the groups block of each PrometheusRule is the rule file's text after its
    header line, with every line indented by two more spaces; parsed, the groups are equal too."""
    plain = (FLEET / (rule_file(stem))).read_text()
    wrapped = (KUBE / f"prometheusrule-{stem}.yaml").read_text()
    assert plain.startswith(header("fleet.yaml"))
    assert _groups_block(wrapped) == plain.removeprefix(header("fleet.yaml"))
    assert yaml.safe_load(wrapped)["spec"]["groups"] == yaml.safe_load(plain)["groups"]


def test_rule_identity_check_sees_a_changed_rule():
    plain = (FLEET / rule_file("alerts")).read_text()
    wrapped = (KUBE / "prometheusrule-alerts.yaml").read_text().replace("for: 60s", "for: 61s", 1)
    assert _groups_block(wrapped) != plain.removeprefix(header("fleet.yaml"))


def test_objects_carry_the_labels_prometheus_and_grafana_select_by(output):
    for document in objects(output.folder).values():
        labels = document["metadata"]["labels"].items()
        if document["kind"] in OPERATOR_KINDS:
            assert output.spec["prometheus_labels"].items() <= labels
        if document["kind"] == "ConfigMap":
            assert output.spec.get("dashboard_labels", {"grafana_dashboard": "1"}).items() <= labels


def test_dashboards_are_the_generated_json_verbatim():
    configmaps = [o for o in objects(KUBE).values() if o["kind"] == "ConfigMap"]
    dashboards = sorted((FLEET / "grafana" / "dashboards").glob("*.json"))
    assert len(configmaps) == len(dashboards)
    for dashboard in dashboards:
        configmap = next(c for c in configmaps if c["metadata"]["name"] == f"gpuobs-fleet-dashboard-{dashboard.stem}")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["data"] == {f"gpuobs-fleet-{dashboard.name}": dashboard.read_text()}


def _secret_files(node, path=()):
    """(path, value) of every *_file setting in an Alertmanager configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file"):
                yield path + (key,), value
            else:
                yield from _secret_files(value, path + (key,))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _secret_files(item, path + (i,))


def test_alertmanager_secret_reads_receivers_secrets_from_the_declared_secrets(tmp_path):
    secret = yaml.safe_load((KUBE / "alertmanager-config.yaml").read_text())
    text = secret["stringData"]["alertmanager.yaml"]
    config = yaml.safe_load(text)
    plain = yaml.safe_load((FLEET / "alertmanager" / "alertmanager.yml").read_text())
    declared = {file: (ref["secret"], ref["key"]) for file, ref in
                yaml.safe_load(SPEC.read_text())["kubernetes"]["alertmanager"]["secrets"].items()}

    rewritten = dict(_secret_files(config))
    originals = dict(_secret_files(plain))
    assert rewritten.keys() == originals.keys() and len(rewritten) == len(declared)
    for where, path in rewritten.items():
        secret_name, key = declared[originals[where]]
        assert path == f"{SECRETS_DIR}/{secret_name}/{key}", where
    mounted = secret["metadata"]["annotations"]["gpuobs/alertmanager-secrets"].split(",")
    assert mounted == sorted({name for name, _ in declared.values()})

    # Apart from the paths, the configuration is the plain alertmanager.yml.
    expected = copy.deepcopy(plain)
    for where, path in rewritten.items():
        node = expected
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = path
    assert config == expected
    assert not re.search(r"(routing_key|api_url|password|credentials|token):", text.replace("_file:", "")), \
        "no secret value in the Secret"
    if available("amtool"):
        (tmp_path / "alertmanager.yaml").write_text(text)
        amtool_check_config(tmp_path / "alertmanager.yaml")


def test_daemonset_runs_the_exporter_locked_down_on_gpu_nodes(output):
    daemonset = objects(output.folder)["exporter-daemonset.yaml"]
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "nvidia.com/gpu" not in str(container["resources"]), "monitoring must not allocate GPUs"
    assert container["livenessProbe"]["httpGet"] == container["readinessProbe"]["httpGet"] == \
        {"path": "/-/healthy", "port": "metrics"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    exporter = output.spec["exporter"]
    if exporter["mig_monitor"]:
        # MIG instances: NVIDIA's runtime grants mig-monitor only with CAP_SYS_ADMIN, effective for root only.
        assert env["NVIDIA_MIG_MONITOR_DEVICES"] == "all" and security["capabilities"]["add"] == ["SYS_ADMIN"]
    else:
        assert "NVIDIA_MIG_MONITOR_DEVICES" not in env and "add" not in security["capabilities"]
    # The kubelet's socket and other users' processes are root's.
    if exporter["mig_monitor"] or exporter.get("pod_resources") or exporter.get("process_metrics"):
        assert pod["securityContext"]["runAsNonRoot"] is False and pod["securityContext"]["runAsUser"] == 0
    else:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65534
    socket = "/var/lib/kubelet/pod-resources"
    if exporter.get("pod_resources"):
        assert "--kubernetes-pod-resources" in container["args"]
        assert container["volumeMounts"] == [{"name": "pod-resources", "mountPath": socket, "readOnly": True}]
        assert pod["volumes"] == [{"name": "pod-resources", "hostPath": {"path": socket, "type": "Directory"}}]
    else:
        assert "--kubernetes-pod-resources" not in container["args"] and "volumes" not in pod
    assert ("--process-metrics" in container["args"]) is bool(exporter.get("process_metrics"))
    assert pod.get("hostPID", False) is bool(exporter.get("process_metrics"))
    if output.name in ("fleet", "mixed"):
        assert pod["runtimeClassName"] == "nvidia"
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert container["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"cpu": "500m", "memory": "256Mi"}}
    else:
        assert "runtimeClassName" not in pod
        assert pod["nodeSelector"] == {"node.kubernetes.io/gpu": "a100"}
        assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                       "effect": "NoExecute"}]
        assert container["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"memory": "512Mi"}}


def test_monitor_endpoint_names_the_exporter_port(output):
    found = objects(output.folder)
    daemonset = found["exporter-daemonset.yaml"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["name"]
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    if "exporter-servicemonitor.yaml" in found:
        monitor, service = found["exporter-servicemonitor.yaml"], found["exporter-service.yaml"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert service["spec"]["ports"][0]["name"] == endpoint["port"] == port
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    else:
        monitor = found["exporter-podmonitor.yaml"]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] == port and "exporter-service.yaml" not in found
        assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def _prometheus_relabel(relabeling: dict) -> dict:
    """prometheus-operator's RelabelConfig as Prometheus' relabel_config."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return {names.get(key, key): value for key, value in relabeling.items()}


@needs("prometheus")
def test_relabelings_give_a_real_prometheus_the_static_target_labels(tmp_path):
    """Targets discovered as prometheus-operator sees exporter pods (node name, namespace, pod,
    ...) end up with exactly the labels the static scrape config gives each host."""
    model = load_model(SPEC)
    monitor = yaml.safe_load((KUBE / "exporter-servicemonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    hosts = [h for h in model.hosts if h.cluster == CLUSTER]
    nodes = [h.name for h in hosts] + ["unlisted-gpu-node"]
    unused = free_port()  # nothing listens: the test reads target labels, not samples
    config = {"global": {"scrape_interval": "1h"}, "scrape_configs": [{
        "job_name": "monitoring/gpuobs-exporter",
        "static_configs": [{"targets": [f"127.0.0.{i + 1}:{unused}"],
                            "labels": {NODE_NAME: node, "namespace": "monitoring", "pod": f"gpuobs-exporter-{i}",
                                       "container": "exporter", "endpoint": "metrics", "service": "gpuobs-exporter"}}
                           for i, node in enumerate(nodes)],
        "relabel_configs": [_prometheus_relabel(r) for r in endpoint["relabelings"]]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    with PrometheusServer(path) as prom:
        deadline = time.monotonic() + 30
        targets = []
        while time.monotonic() < deadline and len(targets) < len(nodes):
            targets = prom.api("targets", state="active")["activeTargets"]
            time.sleep(0.2)
    labels = {t["labels"]["instance"]: t["labels"] for t in targets}
    for host in hosts:
        assert labels[host.name] == {"job": "gpu-exporter", "instance": host.name, **target_labels(model, host)}
    assert labels["unlisted-gpu-node"] == {"job": "gpu-exporter", "instance": "unlisted-gpu-node",
                                           "host": "unlisted-gpu-node"}


def test_a_spec_without_alertmanager_gets_no_secret(tmp_path):
    spec = changed(yaml.safe_load(SPEC.read_text()), lambda d: (d.pop("alertmanager"), d["teams"][0].pop("receivers"),
                                                                d["teams"][1].pop("receivers"),
                                                                d["kubernetes"].pop("alertmanager")))
    path = tmp_path / "noam.yaml"
    path.write_text(yaml.safe_dump(spec))
    files = render(load_model(path))
    assert f"kubernetes/{CLUSTER}/alertmanager-config.yaml" not in files
    assert "alertmanager-config.yaml" not in files[f"kubernetes/{CLUSTER}/kustomization.yaml"]
