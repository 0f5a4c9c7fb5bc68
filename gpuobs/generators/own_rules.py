"""The spec's own recording rules and alerts: their rule file, and the promtool tests of the cases
the spec writes for them.

Every own rule sits in one group, recording rules first: rules of a group run in order, so an alert
reading an own recorded series sees this evaluation's value in Prometheus and in promtool alike,
while Prometheus runs different groups in no order at all. The test file loads that one file, so
its cases depend on no other group and on no order between groups.
"""

from __future__ import annotations

from gpuobs.alerts import render_annotation
from gpuobs.model import FleetModel
from gpuobs.own_rules import OwnAlert, OwnCase, OwnRecording
from gpuobs.promql import quote, sel

RULES = "prometheus/rules/own.yml"
TESTS = "prometheus/tests/own.yml"
GROUP = "gpuobs.own"


def rule_files(model: FleetModel) -> list[str]:
    """The own rule file, where the spec has own rules: every Prometheus that scrapes hosts loads it."""
    return [RULES] if model.own_rules else []


def annotations(alert: OwnAlert) -> dict[str, str]:
    out = {"summary": alert.summary}
    if alert.description is not None:
        out["description"] = alert.description
    if alert.runbook_url is not None:
        out["runbook_url"] = alert.runbook_url
    return out


def _recording_rule(rule: OwnRecording) -> dict:
    return {"record": rule.record, "expr": rule.expr, **({"labels": dict(rule.labels)} if rule.labels else {})}


def _alert_rule(alert: OwnAlert) -> dict:
    return {"alert": alert.name, "expr": alert.expr, "for": alert.for_, "labels": alert.rule_labels,
            "annotations": annotations(alert)}


def documents(model: FleetModel) -> dict[str, dict]:
    own = model.own_rules
    if not own:
        return {}
    rules = [_recording_rule(r) for r in own.recording] + [_alert_rule(a) for a in own.alerts]
    return {RULES: {"groups": [{"name": GROUP, "rules": rules}]}}


def _inputs(case: OwnCase) -> list[dict]:
    return [{"series": series, "values": values} for series, values in case.series]


def _number(value: float):
    return int(value) if float(value).is_integer() else value


def _alert_test(alert: OwnAlert, case: OwnCase) -> dict:
    """Expected labels: the expression's, as the spec gives them, then the rule's own. Annotations
    render from the expression's labels alone, as Prometheus renders them."""
    expected = []
    for e in case.expected:
        labels = dict(e.labels)
        expected.append({"exp_labels": {**labels, **alert.rule_labels},
                         "exp_annotations": {k: render_annotation(v, labels, e.value or 0)
                                             for k, v in annotations(alert).items()}})
    return {"name": case.name, "interval": case.interval, "input_series": _inputs(case),
            "alert_rule_test": [{"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": expected}]}


def _series_text(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


def _recording_test(rule: OwnRecording, case: OwnCase) -> dict:
    """The rule's own series only (selected by its labels): several rules may record one name."""
    own = dict(rule.labels)
    samples = [{"labels": _series_text(rule.record, {**dict(e.labels), **own}), "value": _number(e.value)}
               for e in case.expected]
    return {"name": case.name, "interval": case.interval, "input_series": _inputs(case),
            "promql_expr_test": [{"expr": sel(rule.record, *(f"{k}={quote(v)}" for k, v in rule.labels)),
                                  "eval_time": case.eval_time,
                                  "exp_samples": samples}]}


def test_files(model: FleetModel) -> dict[str, dict]:
    own = model.own_rules
    if not own:
        return {}
    tests = [_recording_test(r, c) for r in own.recording for c in r.cases]
    tests += [_alert_test(a, c) for a in own.alerts for c in a.cases]
    return {TESTS: {"rule_files": ["../rules/own.yml"], "evaluation_interval": model.prometheus.evaluation_interval,
                    "group_eval_order": [GROUP], "tests": tests}}
