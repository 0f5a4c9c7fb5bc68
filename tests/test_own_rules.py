"""The spec's own recording rules and alerts (`rules:`): what the spec refuses, what is generated,
that their promtool cases pass and can fail, and that they route like built-in alerts."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import needs
from gpuobs import tools
from gpuobs.errors import SpecError, ToolError
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators import own_rules
from gpuobs.spec import load_spec
from gpuobs.validate import ALERTMANAGER_CONFIG, ROUTE_TESTS

HOST_H1 = 'cluster="c1", host="h1"'


def util(gpu: str, values: str, host: str = HOST_H1) -> dict:
    return {"series": f'gpu:utilization:ratio{{{host}, gpu="{gpu}"}}', "values": values}


# Two recording rules of one name, told apart by their labels, and two alerts, one of them reading
# a recorded series: the second alert's first case fires only where the recording rules run first in
# the same evaluation.
OWN = {
    "recording": [
        {"record": "cluster:gpus_busy:count", "expr": "count by (cluster) (gpu:utilization:ratio >= 0.5)",
         "labels": {"level": "half"},
         "cases": [{"name": "one of two busy", "series": [util("0", "0.9x8"), util("1", "0.1x8")],
                    "eval_time": "1m", "samples": [{"labels": {"cluster": "c1"}, "value": 1}]}]},
        {"record": "cluster:gpus_busy:count", "expr": "count by (cluster) (gpu:utilization:ratio >= 0.9)",
         "labels": {"level": "most"},
         "cases": [{"name": "both half busy, one mostly", "series": [util("0", "0.95x8"), util("1", "0.6x8")],
                    "eval_time": "1m", "samples": [{"labels": {"cluster": "c1"}, "value": 1}]}]},
    ],
    "alerts": [
        {"alert": "GPUIdle", "expr": "100 * gpu:utilization:ratio < 5", "for": "2m", "severity": "warning",
         "action": "notify", "family": "utilization", "team": "ml", "labels": {"page": "no"},
         "summary": "GPU {{ $labels.gpu }} idle",
         "description": '{{ $labels.host }} GPU {{ $labels.gpu }} is {{ printf "%.1f" $value }}% busy.',
         "runbook_url": "https://runbooks.example/idle",
         "cases": [{"name": "idle", "series": [util("0", "0.02x20")], "eval_time": "3m",
                    "firing": [{"labels": {"cluster": "c1", "host": "h1", "gpu": "0"}, "value": 2}]},
                   {"name": "busy", "series": [util("0", "0.6x20")], "eval_time": "3m"}]},
        {"alert": "ClusterBusy", "expr": 'cluster:gpus_busy:count{level="half"} >= 2', "severity": "critical",
         "action": "drain", "family": "thermal", "summary": "{{ $labels.cluster }} is busy",
         "cases": [{"name": "both busy from the last sample", "series": [util("0", "0x3 1"), util("1", "0x3 1")],
                    "eval_time": "1m", "firing": [{"labels": {"cluster": "c1", "level": "half"}}]},
                   {"name": "one busy", "series": [util("0", "1x4"), util("1", "0x4")], "eval_time": "1m"}]},
    ],
}
ALERTMANAGER = {
    "receivers": [{"name": n, "webhook": {"url": f"http://127.0.0.1:9/{n}"}}
                  for n in ("fleet-pager", "fleet-chat", "ml-chat", "automation")],
    "routing": {"by_severity": {"critical": "fleet-pager", "warning": "fleet-chat"},
                "by_action": {"drain": "automation"}},
}
BASE = {
    "name": "own",
    "clusters": [{"name": "c1"}, {"name": "c2"}],
    "hosts": [{"name": "h1", "cluster": "c1", "gpus": {"model": "A100-SXM4-80GB", "count": 8}},
              {"name": "h2", "cluster": "c2", "address": "10.0.0.2", "gpus": {"model": "A100-SXM4-80GB", "count": 8}}],
    "teams": [{"name": "ml", "clusters": ["c1"], "receivers": {"warning": "ml-chat"}}],
    "alertmanager": ALERTMANAGER,
    "rules": OWN,
}


def spec(**changes) -> dict:
    return {**copy.deepcopy(BASE), **copy.deepcopy(changes)}


def write(tmp_path: Path, data: dict) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def generated(tmp_path: Path, data: dict) -> Path:
    model = load_model(write(tmp_path, data))
    target = tmp_path / "out" / model.name
    write_tree(target, render(model))
    return target


# --- what the spec refuses -------------------------------------------------------------------------

def alert(d, i=0):
    return d["rules"]["alerts"][i]


def recording(d, i=0):
    return d["rules"]["recording"][i]


def setter(where, **values):
    return lambda d: where(d).update(values)


TEMPLATE_HINT = ("uses template syntax gpuobs cannot check; use only '{{ $labels.NAME }}' and "
                 "'{{ printf \"%.1f\" $value }}' (0-9 decimals)")
# (id, change, exact path, exact message)
ERRORS = [
    ("expr-does-not-parse", setter(alert, expr="100 * gpu:utilization:ratio <"), "rules.alerts[0].expr",
     "does not parse as PromQL: invalid promql query"),
    ("expr-gives-a-range-vector", setter(recording, expr="(gpu:utilization:ratio[5m])"), "rules.recording[0].expr",
     "gives a range vector; a rule's expression must give an instant vector or a number (e.g. rate(x[5m]), not "
     "x[5m])"),
    ("record-not-a-metric-name", setter(recording, record="busy-gpus"), "rules.recording[0].record",
     "'busy-gpus' is not a valid metric name; use letters, digits, '_' and ':' (level:metric:operations, "
     "e.g. cluster:gpu_memory_used:bytes)"),
    ("for-not-a-duration", setter(alert, **{"for": "5 minutes"}), "rules.alerts[0].for",
     "'5 minutes' is not a Prometheus duration; use e.g. 30s, 5m, 1h30m"),
    ("unknown-severity", setter(alert, severity="page"), "rules.alerts[0].severity",
     "must be 'critical', 'warning' or 'info'; got 'page'"),
    ("unknown-action", setter(alert, action="drian"), "rules.alerts[0].action",
     "must be 'notify', 'throttle', 'preempt', 'drain', 'reset' or 'quarantine'; got 'drian'; did you mean 'drain'?"),
    ("unknown-team", setter(alert, team="ops"), "rules.alerts[0].team", "unknown team 'ops'; known: ml"),
    ("built-in-alert-name", setter(alert, alert="GPUThermalWarning"), "rules.alerts[0].alert",
     "'GPUThermalWarning' is a built-in alert; give yours another name (a built-in alert is tuned under alerts:)"),
    ("alert-named-twice", setter(lambda d: alert(d, 1), alert="GPUIdle"), "rules.alerts[1].alert",
     "another alert of yours is also named 'GPUIdle'; each needs a name of its own"),
    ("record-of-gpuobs", setter(recording, record="gpu:health:score"), "rules.recording[0].record",
     "'gpu:health:score' is a series gpuobs records itself; choose another name (read gpuobs' series in your "
     "expr instead)"),
    ("record-twice", lambda d: d["rules"]["recording"].append(copy.deepcopy(recording(d))),
     "rules.recording[2].record", "another recording rule of yours records 'cluster:gpus_busy:count' with the same "
     "labels; their series would overwrite each other"),
    ("template-outside-the-subset", setter(alert, summary="GPU {{ $labels.gpu | toUpper }} idle"),
     "rules.alerts[0].summary", f"'GPU {{{{ $labels.gpu | toUpper }}}} idle' {TEMPLATE_HINT}"),
    ("printf-outside-the-subset", setter(alert, description='{{ printf "%d" $value }}'),
     "rules.alerts[0].description", f"'{{{{ printf \"%d\" $value }}}}' {TEMPLATE_HINT}"),
    ("template-in-a-label", setter(alert, labels={"note": "{{ $value }}"}), "rules.alerts[0].labels.note",
     "'{{ $value }}' contains '{{', which Prometheus expands as a template in alert labels; write the text "
     "without it"),
    ("label-gpuobs-sets", setter(alert, labels={"gpu_model": "x"}), "rules.alerts[0].labels.gpu_model",
     "label 'gpu_model' is set by gpuobs itself; choose another name"),
    ("no-quiet-case", lambda d: alert(d)["cases"].pop(), "rules.alerts[0].cases",
     "every alert needs a case where it fires and a quiet one; GPUIdle has no quiet case (one without firing:)"),
    ("no-firing-case", lambda d: alert(d)["cases"].pop(0), "rules.alerts[0].cases",
     "every alert needs a case where it fires and a quiet one; GPUIdle has no case where it fires (one with "
     "firing:)"),
    ("expected-label-the-rule-sets", lambda d: alert(d)["cases"][0]["firing"][0]["labels"].update(page="yes"),
     "rules.alerts[0].cases[0].firing[0].labels.page",
     "the rule sets 'page' itself; leave it out here (gpuobs adds the rule's labels)"),
    ("value-printed-but-not-given", lambda d: alert(d)["cases"][0]["firing"][0].pop("value"),
     "rules.alerts[0].cases[0].firing[0]",
     "the description prints $value; give the value the alert fires with (value:)"),
    ("sample-label-the-rule-sets", lambda d: recording(d).update(labels={"cluster": "c1"}),
     "rules.recording[0].cases[0].samples[0].labels.cluster",
     "the rule sets 'cluster' itself; leave it out here (gpuobs adds the rule's labels)"),
    ("series-not-in-promtool-notation", lambda d: recording(d)["cases"][0]["series"][0].update(series="rate(x[5m])"),
     "rules.recording[0].cases[0].series[0].series",
     "'rate(x[5m])' is not a series in promtool's notation; write metric_name{label=\"value\", ...} with = "
     "matchers only"),
    ("values-not-expanding-notation", lambda d: recording(d)["cases"][0]["series"][0].update(values="1 2 three"),
     "rules.recording[0].cases[0].series[0].values",
     "'1 2 three' is not in promtool's expanding notation ('three' is not a sample); write values like '1 2 3', "
     "'0+10x20' (start, step, count), '5x3', '_' or 'stale'"),
    ("eval-time-not-a-duration", lambda d: recording(d)["cases"][0].update(eval_time="60"),
     "rules.recording[0].cases[0].eval_time", "'60' is not a Prometheus duration; use e.g. 30s, 5m, 1h30m"),
    ("recording-without-cases", setter(recording, cases=[]), "rules.recording[0].cases", "must list at least one item"),
    ("case-key-misspelt", lambda d: recording(d)["cases"][0].update(eval_at="1m"),
     "rules.recording[0].cases[0].eval_at", "unknown key 'eval_at'; did you mean 'eval_time'?"),
]


@pytest.mark.parametrize("change, path, message", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_spec_refuses(tmp_path, change, path, message):
    data = spec()
    change(data)
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, data))
    assert [(p.path, p.message) for p in info.value.problems] == [(path, message)]
    assert info.value.problems[0].line is not None


# --- what is generated -----------------------------------------------------------------------------

def test_own_rules_are_one_group_recording_first_in_every_cluster_prometheus(tmp_path):
    """With a Prometheus per cluster, each loads the own rules (on Kubernetes, as a PrometheusRule of
    its own); the global tier does not."""
    data = spec(**{"global": {}, "kubernetes": {"exporter": {"image": "gpuobs/exporter:1.0"}}})
    for cluster, port in zip(data["clusters"], (9090, 9091), strict=True):
        cluster["prometheus"] = {"address": f"10.1.0.1:{port}"}
    out = generated(tmp_path, data)
    (group,) = yaml.safe_load((out / own_rules.RULES).read_text())["groups"]
    assert group["name"] == own_rules.GROUP and "interval" not in group
    assert [r.get("record") or r["alert"] for r in group["rules"]] == ["cluster:gpus_busy:count"] * 2 + [
        "GPUIdle", "ClusterBusy"]
    assert [r["labels"] for r in group["rules"][:2]] == [{"level": "half"}, {"level": "most"}]
    idle = group["rules"][2]
    assert idle["for"] == "2m" and group["rules"][3]["for"] == "0s"
    assert idle["labels"] == {"severity": "warning", "action": "notify", "family": "utilization", "team": "ml",
                              "page": "no"}
    assert idle["annotations"] == {"summary": "GPU {{ $labels.gpu }} idle",
                                   "description": OWN["alerts"][0]["description"],
                                   "runbook_url": "https://runbooks.example/idle"}
    for cluster in ("c1", "c2"):
        config = yaml.safe_load((out / f"prometheus/clusters/{cluster}/prometheus.yml").read_text())
        assert config["rule_files"][-1] == "../../rules/own.yml"
        rule = yaml.safe_load((out / f"kubernetes/{cluster}/prometheusrule-own.yaml").read_text())
        assert rule["spec"] == yaml.safe_load((out / own_rules.RULES).read_text())
    assert "own.yml" not in (out / "prometheus/global/prometheus.yml").read_text()
    check = tools.promtool_check_rules([out / own_rules.RULES]) if tools.available("promtool") else "SUCCESS"
    assert "SUCCESS" in check


def test_nothing_is_generated_without_own_rules(tmp_path):
    data = spec()
    del data["rules"]
    out = generated(tmp_path, data)
    assert not (out / own_rules.RULES).exists() and not (out / own_rules.TESTS).exists()
    assert "own.yml" not in (out / "prometheus/prometheus.yml").read_text()


def test_a_python_spec_builds_the_same_own_rules(tmp_path):
    yaml_model = load_model(write(tmp_path, spec()))
    source = textwrap.dedent(f"""
        from gpuobs.spec import (AlertCase, ExpectedAlert, ExpectedSample, Fleet, InputSeries, OwnAlert, OwnRules,
                                 RecordingCase, RecordingRule)

        BASE = {BASE!r}
        rules = BASE.pop("rules")
        recording = [RecordingRule(**{{**r, "cases": [RecordingCase(**{{
            **c, "series": [InputSeries(**s) for s in c["series"]],
            "samples": [ExpectedSample(**e) for e in c["samples"]]}}) for c in r["cases"]]}})
            for r in rules["recording"]]
        alerts = [OwnAlert(**{{**a, "cases": [AlertCase(**{{
            **c, "series": [InputSeries(**s) for s in c["series"]],
            "firing": [ExpectedAlert(**e) for e in c.get("firing", [])]}}) for c in a["cases"]]}})
            for a in rules["alerts"]]
        fleet = Fleet(**BASE, rules=OwnRules(recording=recording, alerts=alerts))
        """)
    path = tmp_path / "own_py.py"
    path.write_text(source)
    python_model = load_model(path)
    assert python_model.own_rules == yaml_model.own_rules
    assert own_rules.documents(python_model) == own_rules.documents(yaml_model)
    assert own_rules.test_files(python_model) == own_rules.test_files(yaml_model)


def test_a_python_spec_problem_names_its_place_and_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent("""
        from gpuobs.spec import Cluster, Fleet, Gpus, Host, OwnAlert, OwnRules

        idle = OwnAlert(alert="GPUIdle", expr="up ==", severity="warning", action="notify", family="x",
                        summary="idle", cases=[])
        fleet = Fleet(clusters=[Cluster(name="c1")],
                      hosts=[Host(name="h1", cluster="c1", gpus=Gpus(model="A100-SXM4-80GB", count=8))],
                      rules=OwnRules(alerts=[idle]))
        """))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [(p.path, p.message, p.line) for p in info.value.problems] == [
        ("rules.alerts[0].expr", "does not parse as PromQL: invalid promql query", 4)]


# --- promtool and amtool ---------------------------------------------------------------------------

@needs("promtool")
def test_own_cases_pass_promtool_and_fail_on_a_wrong_expectation(tmp_path):
    """The second recording rule's case records both rules' series: it passes as its test reads only
    the series of its own labels."""
    out = generated(tmp_path / "right", spec())
    assert "SUCCESS" in tools.promtool_test_rules([out / own_rules.TESTS])

    wrong = {
        "a recorded value": lambda d: recording(d)["cases"][0]["samples"][0].update(value=2),
        "nothing recorded": lambda d: recording(d, 1)["cases"][0].update(samples=[]),
        "an expected alert's value (in its description)": lambda d: alert(d)["cases"][0]["firing"][0].update(value=3),
        "a quiet case that fires": lambda d: alert(d)["cases"][1]["series"][0].update(values="0.01x20"),
        "a case before `for` has elapsed": lambda d: alert(d)["cases"][0].update(eval_time="1m"),
        "an expected label": lambda d: alert(d, 1)["cases"][0]["firing"][0]["labels"].update(cluster="c2"),
    }
    for why, change in wrong.items():
        data = spec()
        change(data)
        out = generated(tmp_path / why.replace(" ", "-").replace("'", "").replace("`", ""), data)
        with pytest.raises(ToolError):
            tools.promtool_test_rules([out / own_rules.TESTS])


@needs("amtool")
def test_own_alerts_reach_their_teams_and_severities_receivers(tmp_path):
    out = generated(tmp_path, spec())
    cases = yaml.safe_load((out / ROUTE_TESTS).read_text())["tests"]
    own = {c["name"]: c["receivers"] for c in cases if c["labels"]["alertname"] in ("GPUIdle", "ClusterBusy")}
    # GPUIdle names team ml: ml's warning receiver, for whatever host. ClusterBusy names none: on the team's
    # hosts and the others alike, automation (its action) and then the fleet's critical receiver.
    assert own == {"GPUIdle on h1 (team ml)": ["ml-chat"],
                   "ClusterBusy on h1 (team ml)": ["automation", "fleet-pager"],
                   "ClusterBusy on h2": ["automation", "fleet-pager"]}
    tools.amtool_route_tests(out / ALERTMANAGER_CONFIG, cases)
    # Alertmanager's own router, on the labels an own alert carries from its rule and a series of h2.
    group = yaml.safe_load((out / own_rules.RULES).read_text())["groups"][0]
    idle = next(r for r in group["rules"] if r.get("alert") == "GPUIdle")
    labels = {"alertname": "GPUIdle", "cluster": "c2", "host": "h2", "gpu": "0", **idle["labels"]}
    assert tools.amtool_receivers(out / ALERTMANAGER_CONFIG, labels) == ["ml-chat"]


@needs("promtool")
def test_an_alert_sees_this_evaluations_recorded_value_as_recording_rules_come_first(tmp_path):
    """ClusterBusy's first case fires at the evaluation where both GPUs turn busy: only with the
    recording rules before it in the group. Moved after it, the case fails."""
    out = generated(tmp_path, spec())
    rules_file = out / own_rules.RULES
    document = yaml.safe_load(rules_file.read_text())
    group = document["groups"][0]
    group["rules"] = group["rules"][2:] + group["rules"][:2]
    rules_file.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ToolError, match="both busy from the last sample"):
        tools.promtool_test_rules([out / own_rules.TESTS])
