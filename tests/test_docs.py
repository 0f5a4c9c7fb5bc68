"""README and runbooks keep up with the code: every alert and spec key is documented."""

import re

from conftest import ROOT
from gpuobs.alerts import ALERTS
from gpuobs.gpus import GPU_MODELS
from gpuobs.spec import schema

README = (ROOT / "README.md").read_text()
RUNBOOKS = (ROOT / "docs" / "runbooks.md").read_text()


def test_every_alert_is_in_the_readme_table_and_has_a_runbook_section():
    headings = set(re.findall(r"^## (\w+)$", RUNBOOKS, flags=re.M))
    for alert in ALERTS:
        assert f"| {alert.name} |" in README, alert.name
        assert alert.name in headings, f"docs/runbooks.md has no section for {alert.name}"
        row = next(line for line in README.splitlines() if line.startswith(f"| {alert.name} |"))
        assert f"| {alert.for_} | {alert.severity} | {alert.action} |" in row, row


def test_every_spec_key_is_in_the_readme():
    classes = [schema.Fleet, schema.Host, schema.Gpus, schema.MigLayout, schema.Cluster, schema.Team,
               schema.Thresholds, schema.AlertOverride, schema.Prometheus, schema.Links, schema.Alertmanager,
               schema.Receiver, schema.Webhook, schema.Slack, schema.PagerDuty, schema.Email, schema.BasicAuth,
               schema.Routing, schema.TimeInterval, schema.TimeRange, schema.InhibitRule, schema.Grafana,
               schema.DashboardSpec, schema.PanelSpec, schema.ThresholdStep, schema.Kubernetes,
               schema.KubernetesExporter, schema.Toleration, schema.Resources, schema.ResourceAmounts,
               schema.KubernetesAlertmanager, schema.SecretKey, schema.Exporter, schema.GpuModelSpec,
               schema.MigProfileSpec, schema.KubernetesDcgmExporter]
    for cls in classes:
        for name, field in cls.model_fields.items():
            assert f"`{field.alias or name}`" in README or f"{field.alias or name}:" in README, \
                f"{cls.__name__}.{field.alias or name}"


def test_every_gpu_model_is_in_the_readme():
    for key, model in GPU_MODELS.items():
        assert f"| {key} | {model.nvml_name} |" in README, key
