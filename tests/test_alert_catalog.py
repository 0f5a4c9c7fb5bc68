"""One alert, one definition: each catalog entry holds everything the generators and the
end-to-end test need, and an alert defined anywhere (here, in a test) flows into the rules, their
promtool tests and the annotations without a line elsewhere."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml

from conftest import MINIMAL_SPEC, ROOT, VARIANTS, needs
from exporters.simulator.faults import FAULTS, resolve_params
from gpuobs import links, tools
from gpuobs.alerts import ALERTS, BLIND_ALERT, BY_NAME, AlertDef, Proof
from gpuobs.alerts.base import CASES_PER, GPU_TEXT, VALUE_TEXT
from gpuobs.alerts.coverage import blind_rules
from gpuobs.coverage import unserved
from gpuobs.errors import ToolError
from gpuobs.generate import load_model, render, write_tree
from gpuobs.model import Alert
from gpuobs.series import each_setup, names_of

RUNBOOK_HEADINGS = re.findall(r"^## (\S+)$", (ROOT / "docs" / "runbooks.md").read_text(), re.MULTILINE)


def _panels(fleet: str) -> set[tuple[str, int]]:
    """(dashboard key, panel id) of every panel the committed fleet's dashboards hold."""
    out = set()
    for key in (*links.DASHBOARDS, links.EFFICIENCY):  # the demo has an efficiency section
        dashboard = json.loads((ROOT / "generated" / fleet / "grafana" / "dashboards" / f"{key}.json").read_text())
        out |= {(key, p["id"]) for p in dashboard["panels"]}
    return out


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_every_alert_holds_its_whole_definition(alert):
    """Its PromQL, its promtool cases, a panel the dashboards have, a runbook section (GitHub's
    anchor of a heading is its lower-cased text) and a proof the simulator can run."""
    assert callable(alert.expression) or callable(alert.variants)
    assert callable(alert.cases) and alert.cases_per in CASES_PER
    assert alert.panel in _panels("demo"), f"{alert.name}: no panel {alert.panel} in the demo's dashboards"
    assert alert.runbook_anchor in {h.lower() for h in RUNBOOK_HEADINGS}, f"{alert.name}: no runbook section"
    # GPUAlertBlind needs no fault: a setup that cannot serve an alert raises it by itself; nor does
    # one the simulator's idle notebook pods raise.
    assert alert.proof.faults or alert.proof.idle_pod or alert.name == BLIND_ALERT, f"{alert.name}: no fault proves it"
    for name, params in alert.proof.faults:
        assert name in FAULTS, f"{alert.name}: the simulator has no fault {name}"
        resolve_params(FAULTS[name], params)
    for fallback in alert.fallbacks:
        # It stands in where this alert's signals are missing, so it reads none of them.
        assert fallback in BY_NAME, f"{alert.name}: no alert {fallback} to fall back on"
        assert not {k for s in alert.needs for k in s} & {k for s in BY_NAME[fallback].needs for k in s}, fallback


def _boiling_cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    return b.gauge_alert(alert, f"{b.n.exporter.job} {gpu.key}", labels, [(b.n.gpu_temp, labels, 101)],
                         [(b.n.gpu_temp, labels, 100)], 101)


BOILING = AlertDef(
    "GPUBoiling", "thermal", "critical", "notify", "30s", "GPU past 100 C", f"{GPU_TEXT} is at {VALUE_TEXT} C.",
    panel=(links.GPU_DETAIL, links.TEMPERATURE_PANEL), proof=Proof((("thermal-runaway", {}),)),
    needs=(("gpu_temp",),), cases=_boiling_cases,
    expression=lambda d, model, ns: each_setup(ns, lambda n: n.gpu("gpu_temp", where="> 100")))


def test_every_alert_is_defined_once():
    assert len({a.name for a in ALERTS}) == len(ALERTS)


@needs("promtool")
def test_an_alert_defined_in_a_test_reaches_rules_tests_and_annotations(tmp_path):
    spec = tmp_path / "toy.yaml"
    spec.write_text(yaml.safe_dump({**MINIMAL_SPEC, "name": "toy"}))
    model = load_model(spec)
    model = dataclasses.replace(model, alerts=(*model.alerts, Alert(BOILING, "critical", "30s", ())))
    out = tmp_path / "out"
    write_tree(out, render(model))

    groups = yaml.safe_load((out / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == "GPUBoiling"]
    assert rule["expr"].startswith("max without (") and rule["expr"].endswith("(DCGM_FI_DEV_GPU_TEMP > 100)")
    assert rule["for"] == "30s" and rule["labels"] == {"severity": "critical", "action": "notify", "family": "thermal"}
    assert rule["annotations"]["runbook_url"].endswith("#gpuboiling")
    assert rule["annotations"]["dashboard_url"].endswith(f"&viewPanel={links.TEMPERATURE_PANEL}")
    assert "/d/gpuobs-toy-gpu-detail/" in rule["annotations"]["dashboard_url"]

    tests_file = out / "prometheus" / "tests" / "alerts.yml"
    document = yaml.safe_load(tests_file.read_text())
    document["tests"] = [t for t in document["tests"]
                         if {c["alertname"] for c in t["alert_rule_test"]} == {"GPUBoiling"}]
    fires = [e for t in document["tests"] for c in t["alert_rule_test"] for e in c["exp_alerts"]]
    assert fires and fires[0]["exp_annotations"]["description"] == "c1/h1 GPU 0 (A100-SXM4-80GB) is at 101.0 C."
    tests_file.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "FAILED" not in tools.promtool_test_rules([tests_file])

    # The cases check values: the same tests fail against a rule one degree off.
    rule["expr"] = rule["expr"].replace("> 100", "> 101")
    (out / "prometheus" / "rules" / "alerts.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    with pytest.raises(ToolError, match="FAILED"):
        tools.promtool_test_rules([tests_file])


IDLE = BY_NAME["GPUAllocatedIdle"]
EFFICIENCY = {"currency": "EUR", "idle": {"threshold": 0.05, "for": "45m"}}


def _model(tmp_path, **extra):
    spec = tmp_path / "fleet.yaml"
    spec.write_text(yaml.safe_dump({**MINIMAL_SPEC, **extra}))
    return load_model(spec)


def test_an_alert_of_a_section_exists_only_with_it(tmp_path):
    """Without an efficiency section the fleet has no GPUAllocatedIdle: no rule, no case, no route
    test, not even a line saying it is off; with it, its `for` is the section's idle `for` unless
    the spec's `alerts:` gives one."""
    out = tmp_path / "out"
    write_tree(out, render(_model(tmp_path)))
    assert not [p for p in out.rglob("*") if p.is_file() and IDLE.name in p.read_text()]
    assert _model(tmp_path, efficiency=EFFICIENCY).alert(IDLE.name).for_ == "45m"
    overridden = _model(tmp_path, efficiency=EFFICIENCY, alerts={IDLE.name: {"for": "2h", "severity": "info"}})
    assert (overridden.alert(IDLE.name).for_, overridden.alert(IDLE.name).severity) == ("2h", "info")


def test_the_idle_alert_reads_only_setups_that_name_who_holds_a_gpu(tmp_path):
    """nvidia_gpu_exporter names no workload: a fleet of it alone has no rule and no case for the
    alert, and no blind spot either; the fleet README says why it is left out."""
    model = _model(tmp_path, efficiency=EFFICIENCY,
                   clusters=[{"name": "c1", "exporter": {"kind": "nvidia_gpu_exporter"}}])
    assert model.alert(IDLE.name) is not None
    files = render(model)
    assert IDLE.name not in yaml.safe_dump(files["prometheus/rules/alerts.yml"])
    assert IDLE.name not in yaml.safe_dump(files["prometheus/tests/alerts.yml"])
    assert "no exporter setup of the fleet can name who holds a GPU" in files["README.md"]


def test_an_alert_with_fallbacks_is_absent_where_its_signal_is_not_served_not_blind(tmp_path):
    """On a fleet of every exporter kind, the recovery action alert reads only the setup serving
    it, and neither GPUAlertBlind nor `gpuobs validate` counts the others as blind to it: the XID
    alerts cover their GPUs."""
    spec = tmp_path / "variants.yaml"
    spec.write_text(yaml.safe_dump(VARIANTS))
    model = load_model(spec)
    alert = BY_NAME["GPURecoveryActionPending"]
    serving = [n for n in names_of(model) if n.serves("recovery_action")]
    others = [n for n in names_of(model) if not n.serves("recovery_action")]
    assert serving and others
    (rule,) = alert.rules(model, names_of(model))
    assert all(n.job in rule.expr for n in serving) and not any(n.job in rule.expr for n in others)
    assert alert.name not in {blinded.name for blinded, *_ in blind_rules(model)}
    assert alert.name not in {name for _, missing in unserved(model) for name, _ in missing}
