"""The kubernetes section: bad input is refused with its path and Kubernetes' own rules, before
anything is written."""

import pytest
import yaml
from click.testing import CliRunner

from conftest import MINIMAL_SPEC, assert_one_problem, changed
from gpuobs.cli import main
from gpuobs.generate import load_model, render

PAGER_KEY = "/run/secrets/pagerduty"
BASE = {
    **MINIMAL_SPEC,
    "name": "k",
    "alertmanager": {"receivers": [{"name": "pager", "pagerduty": {"routing_key_file": PAGER_KEY}}],
                     "routing": {"by_severity": {"critical": "pager"}}},
    "kubernetes": {"exporter": {"image": "registry.example.com/gpuobs-exporter:0.1.0"},
                   "alertmanager": {"secrets": {PAGER_KEY: {"secret": "pagerduty", "key": "routing-key"}}}},
}


def k8s(data):
    return data["kubernetes"]


def exporter(data):
    return data["kubernetes"]["exporter"]


CASES = [
    # --- node selector: a map of label keys to string values, never empty
    ("node-selector-a-list", lambda d: exporter(d).update(node_selector=["nvidia.com/gpu.present=true"]),
     "kubernetes.exporter.node_selector", "expected a map of label keys to string values"),
    ("node-selector-nested-map", lambda d: exporter(d).update(node_selector={"nvidia.com/gpu": {"present": "true"}}),
     "kubernetes.exporter.node_selector.nvidia.com/gpu", "a label value is one string, not a mapping"),
    ("node-selector-unquoted-boolean", lambda d: exporter(d).update(node_selector={"nvidia.com/gpu.present": True}),
     "kubernetes.exporter.node_selector.nvidia.com/gpu.present", "label values are strings; quote true in YAML"),
    ("node-selector-number", lambda d: exporter(d).update(node_selector={"gpu-count": 8}),
     "kubernetes.exporter.node_selector.gpu-count", "label values are strings; quote 8"),
    ("node-selector-bad-key", lambda d: exporter(d).update(node_selector={"gpu type": "a100"}),
     "kubernetes.exporter.node_selector.gpu type", "'gpu type' is not a Kubernetes label key"),
    ("node-selector-bad-value", lambda d: exporter(d).update(node_selector={"gpu": "A100 80GB"}),
     "kubernetes.exporter.node_selector.gpu", "'A100 80GB' is not a Kubernetes label value"),
    ("node-selector-value-with-a-line-break", lambda d: exporter(d).update(node_selector={"gpu": "a100\n"}),
     "kubernetes.exporter.node_selector.gpu", "'a100\\n' is not a Kubernetes label value"),
    ("namespace-with-a-line-break", lambda d: k8s(d).update(namespace="monitoring\n"),
     "kubernetes.namespace", "'monitoring\\n' is not a Kubernetes name"),
    ("node-selector-empty", lambda d: exporter(d).update(node_selector={}),
     "kubernetes.exporter.node_selector", "an empty node selector runs the exporter on every node"),
    # --- labels on the objects
    ("prometheus-label-value-too-long", lambda d: k8s(d).update(prometheus_labels={"release": "x" * 64}),
     "kubernetes.prometheus_labels.release", "is not a Kubernetes label value: at most 63"),
    ("prometheus-label-gpuobs-sets", lambda d: k8s(d).update(prometheus_labels={"app.kubernetes.io/name": "x"}),
     "kubernetes.prometheus_labels.app.kubernetes.io/name", "gpuobs sets the app.kubernetes.io/* labels itself"),
    ("dashboard-labels-empty", lambda d: k8s(d).update(dashboard_labels={}),
     "kubernetes.dashboard_labels", "Grafana's sidecar finds dashboards by label"),
    ("dashboard-label-key-with-bad-prefix", lambda d: k8s(d).update(dashboard_labels={"Grafana.io/dash": "1"}),
     "kubernetes.dashboard_labels.Grafana.io/dash", "is not a Kubernetes label key"),
    # --- image, names, choices
    ("image-unpinned", lambda d: exporter(d).update(image="registry.example.com/gpuobs-exporter"),
     "kubernetes.exporter.image", "does not pin a version"),
    ("image-latest", lambda d: exporter(d).update(image="gpuobs-exporter:latest"),
     "kubernetes.exporter.image", "does not pin a version"),
    ("image-not-a-reference", lambda d: exporter(d).update(image="GPUobs Exporter:1"),
     "kubernetes.exporter.image", "is not an image reference"),
    ("image-missing", lambda d: exporter(d).pop("image"), "kubernetes.exporter.image", "required key missing"),
    ("pull-policy-unknown", lambda d: exporter(d).update(image_pull_policy="Sometimes"),
     "kubernetes.exporter.image_pull_policy", "'IfNotPresent', 'Always' or 'Never'"),
    ("namespace-not-a-dns-label", lambda d: k8s(d).update(namespace="GPU_monitoring"),
     "kubernetes.namespace", "'GPU_monitoring' is not a Kubernetes name"),
    ("runtime-class-with-space", lambda d: exporter(d).update(runtime_class="nvidia runtime"),
     "kubernetes.exporter.runtime_class", "is not a Kubernetes object name"),
    ("monitor-unknown", lambda d: k8s(d).update(monitor="ScrapeConfig"),
     "kubernetes.monitor", "'ServiceMonitor' or 'PodMonitor'"),
    ("unknown-key", lambda d: exporter(d).update(nodeSelector={"a": "b"}), "kubernetes.exporter.nodeSelector",
     "unknown key 'nodeSelector'; did you mean 'node_selector'?"),
    ("unknown-key-far-from-any", lambda d: exporter(d).update(hostNetwork=True), "kubernetes.exporter.hostNetwork",
     "unknown key 'hostNetwork'; allowed: image, image_pull_policy, node_selector, tolerations"),
    ("fleet-name-with-underscore", lambda d: d.update(name="gpu_fleet"), "name",
     "fleet name 'gpu_fleet' names Kubernetes objects, which cannot contain '_'"),
    ("fleet-name-with-a-dot-beside-a-dash", lambda d: d.update(name="gpu.-fleet"), "name",
     "fleet name 'gpu.-fleet' names Kubernetes objects, which cannot contain '_', nor '.' next to '.' or '-'"),
    # --- resources
    ("cpu-not-a-quantity", lambda d: exporter(d).update(resources={"requests": {"cpu": "half a core"}}),
     "kubernetes.exporter.resources.requests.cpu", "'half a core' is not a Kubernetes quantity"),
    ("memory-in-megabytes-spelt-mb", lambda d: exporter(d).update(resources={"limits": {"memory": "256MB"}}),
     "kubernetes.exporter.resources.limits.memory", "'256MB' is not a Kubernetes quantity"),
    ("request-above-limit", lambda d: exporter(d).update(resources={"requests": {"memory": "1Gi"},
                                                                    "limits": {"memory": "256Mi"}}),
     "kubernetes.exporter.resources.requests.memory", "request 1Gi is above the limit 256Mi"),
    ("cpu-request-above-limit-in-other-units", lambda d: exporter(d).update(resources={
        "requests": {"cpu": 1}, "limits": {"cpu": "500m"}}),
     "kubernetes.exporter.resources.requests.cpu", "request 1 is above the limit 500m"),
    # --- tolerations
    ("toleration-exists-with-value", lambda d: exporter(d).update(tolerations=[
        {"key": "nvidia.com/gpu", "operator": "Exists", "value": "present"}]),
     "kubernetes.exporter.tolerations[0].value", "operator Exists matches any value"),
    ("toleration-equal-without-key", lambda d: exporter(d).update(tolerations=[{"value": "gpu"}]),
     "kubernetes.exporter.tolerations[0].key", "operator Equal needs a key"),
    ("toleration-unknown-effect", lambda d: exporter(d).update(tolerations=[
        {"key": "gpu", "operator": "Exists", "effect": "NoScheduleEver"}]),
     "kubernetes.exporter.tolerations[0].effect", "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'"),
    # --- receivers' secrets
    ("receiver-secret-file-without-a-secret", lambda d: d["alertmanager"]["receivers"].append(
        {"name": "tickets", "slack": {"api_url_file": "/run/secrets/slack"}}),
     "alertmanager.receivers[1].slack.api_url_file", "no Secret holds /run/secrets/slack on Kubernetes"),
    ("basic-auth-password-without-a-secret", lambda d: d["alertmanager"]["receivers"].append(
        {"name": "robot", "webhook": {"url": "http://robot.example/", "basic_auth": {
            "username": "am", "password_file": "/run/secrets/robot"}}}),
     "alertmanager.receivers[1].webhook.basic_auth.password_file", "no Secret holds /run/secrets/robot"),
    ("secret-no-receiver-uses", lambda d: k8s(d)["alertmanager"]["secrets"].update(
        {"/run/secrets/old": {"secret": "old", "key": "k"}}),
     "kubernetes.alertmanager.secrets./run/secrets/old", "no receiver names this file"),
    ("secret-name-upper-case", lambda d: k8s(d)["alertmanager"]["secrets"][PAGER_KEY].update(secret="PagerDuty"),
     f"kubernetes.alertmanager.secrets.{PAGER_KEY}.secret", "'PagerDuty' is not a Kubernetes object name"),
    ("secret-key-with-slash", lambda d: k8s(d)["alertmanager"]["secrets"][PAGER_KEY].update(key="pd/key"),
     f"kubernetes.alertmanager.secrets.{PAGER_KEY}.key", "'pd/key' is not a Secret key"),
    ("secret-inline-value", lambda d: k8s(d)["alertmanager"]["secrets"].update({PAGER_KEY: "s3cr3t"}),
     f"kubernetes.alertmanager.secrets.{PAGER_KEY}", "must be a mapping (key: value); the value is not shown"),
    ("config-secret-not-a-name", lambda d: k8s(d)["alertmanager"].update(config_secret="Alertmanager Config"),
     "kubernetes.alertmanager.config_secret", "is not a Kubernetes object name"),
    ("mig-host-without-a-mig-monitor-choice", lambda d: d["hosts"][0]["gpus"].update(mig={"profiles": ["7g.80gb"]}),
     "kubernetes.exporter.mig_monitor", "hosts with MIG need a choice: true reads their MIG instances"),
    ("kubernetes-alertmanager-without-alertmanager", lambda d: d.pop("alertmanager"),
     "kubernetes.alertmanager", "the spec has no alertmanager section to configure"),
]


def test_base_is_valid_and_generates_the_folder(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(BASE))
    files = render(load_model(path))
    assert "kubernetes/kustomization.yaml" in files
    assert "/etc/alertmanager/secrets/pagerduty/routing-key" in files["kubernetes/alertmanager-config.yaml"]


@pytest.mark.parametrize("name, change, path, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_kubernetes_section(tmp_path, name, change, path, fragment):
    assert_one_problem(tmp_path, BASE, change, path, fragment)


def test_a_bad_kubernetes_section_writes_nothing(tmp_path):
    spec = tmp_path / "k.yaml"
    spec.write_text(yaml.safe_dump(changed(BASE, lambda d: exporter(d).update(node_selector=["gpu"]))))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{spec}: kubernetes.exporter.node_selector: expected a map of label keys" in result.stderr
    assert "(line " in result.stderr and "Traceback" not in result.output
    assert not out.exists()


def test_a_python_spec_builds_the_same_section(tmp_path):
    (tmp_path / "k.py").write_text(f'''
from gpuobs.spec import (Cluster, Fleet, Gpus, Host, Kubernetes, KubernetesAlertmanager, KubernetesExporter,
                         SecretKey)
from gpuobs.spec.schema import Alertmanager

fleet = Fleet(
    name="k", clusters=[Cluster(name="c1")],
    hosts=[Host(name="h1", cluster="c1", address="127.0.0.1", gpus=Gpus(model="A100-SXM4-80GB", count=8))],
    alertmanager=Alertmanager.model_validate({BASE["alertmanager"]!r}),
    kubernetes=Kubernetes(exporter=KubernetesExporter(image="registry.example.com/gpuobs-exporter:0.1.0"),
                          alertmanager=KubernetesAlertmanager(
                              secrets={{"{PAGER_KEY}": SecretKey(secret="pagerduty", key="routing-key")}})),
)
''')
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(BASE))

    def kubernetes_files(name):
        files = render(load_model(tmp_path / name))
        return {path: text.replace(name, "SPEC") for path, text in files.items() if path.startswith("kubernetes/")}

    assert kubernetes_files("k.py") == kubernetes_files("k.yaml") != {}
