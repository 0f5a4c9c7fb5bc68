"""README and runbooks keep up with the code: every alert and spec key is documented."""

import re
import tomllib

import yaml

from conftest import ROOT
from exporters.simulator.cli import build_parser
from gpuobs.alerts import ALERTS
from gpuobs.demo import CONTROL_PORT
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


def test_every_runbook_section_says_when_its_alert_resolves():
    """The on-call person closing an alert needs to know whether its clearing means the GPU was
    fixed: one line per section says what ends it."""
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", RUNBOOKS, flags=re.M | re.S))
    for alert in ALERTS:
        lines = [line for line in sections[alert.name].splitlines() if line.startswith("Resolves: ")]
        assert len(lines) == 1, f"docs/runbooks.md, {alert.name}: {len(lines)} 'Resolves:' lines, want one"


def test_every_spec_key_is_in_the_readme():
    classes = [schema.Fleet, schema.Host, schema.Gpus, schema.MigLayout, schema.Cluster, schema.Team,
               schema.Thresholds, schema.AlertOverride, schema.Prometheus, schema.Links, schema.Alertmanager,
               schema.Receiver, schema.Webhook, schema.Slack, schema.PagerDuty, schema.Email, schema.BasicAuth,
               schema.Routing, schema.TimeInterval, schema.TimeRange, schema.InhibitRule, schema.Grafana,
               schema.DashboardSpec, schema.PanelSpec, schema.ThresholdStep, schema.Kubernetes,
               schema.KubernetesExporter, schema.Toleration, schema.Resources, schema.ResourceAmounts,
               schema.KubernetesAlertmanager, schema.SecretKey, schema.Exporter, schema.GpuModelSpec,
               schema.MigProfileSpec, schema.KubernetesDcgmExporter, schema.OwnRules, schema.RecordingRule,
               schema.OwnAlert, schema.AlertCase, schema.RecordingCase, schema.InputSeries, schema.ExpectedAlert,
               schema.ExpectedSample, schema.Efficiency, schema.ClusterEfficiency, schema.IdleAllocation]
    for cls in classes:
        for name, field in cls.model_fields.items():
            assert f"`{field.alias or name}`" in README or f"{field.alias or name}:" in README, \
                f"{cls.__name__}.{field.alias or name}"


def test_every_gpu_model_is_in_the_readme():
    for key, model in GPU_MODELS.items():
        assert f"| {key} | {model.nvml_name} |" in README, key


def test_set_up_installs_into_a_virtual_environment_and_names_the_quick_loop():
    setup = README.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv .venv && . .venv/bin/activate\npip install -e '.[test]'" in setup
    assert "full suite takes a few minutes" in setup
    assert '\npython3 -m pytest -m "not slow"\n' in setup
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers), "the quick loop leaves out a marker that exists"


def test_every_fault_api_port_the_docs_name_is_the_demos():
    """`gpuobs demo`, the simulator's default and compose/ serve the control API on one port, and the
    examples send faults there."""
    assert build_parser().get_default("control_address") == f"127.0.0.1:{CONTROL_PORT}"
    simulator = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())["services"]["simulator"]
    command = simulator["command"]
    assert command[command.index("--control-address") + 1] == f"127.0.0.1:{CONTROL_PORT}"
    docs = README + (ROOT / "exporters" / "README.md").read_text()
    named = re.findall(r"(?:127\.0\.0\.1|localhost):(\d+)/faults", docs) + re.findall(
        r"(?:--control-address[ =]|control API: )\S*?:(\d+)", docs)
    assert named and set(named) == {str(CONTROL_PORT)}, named


def test_every_exporter_flag_and_its_variable_are_in_its_flag_table():
    from exporters.nvml_exporter import build_parser

    text = (ROOT / "exporters" / "README.md").read_text()
    table = text.split("\n## gpuobs-exporter\n", 1)[1].split("\n### ", 1)[0]
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"| `{flag}" in table, flag
        variable = re.search(r"\[(GPUOBS_[A-Z_]+)", action.help or "")
        if variable:
            assert f"`{variable[1]}" in table, variable[1]
