"""The alertmanager section: bad input is refused with its path; the generated routing tests
are run by amtool and catch a broken route tree."""

import pytest
import yaml

from conftest import MINIMAL_SPEC, ROOT, assert_one_problem, changed, needs
from gpuobs.errors import ToolError
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.alertmanager import ROUTE_TESTS, expected_receivers, inhibit_rules, route_tests
from gpuobs.spec import load_spec
from gpuobs.tools import amtool_receivers, amtool_route_tests

BASE = {
    **MINIMAL_SPEC,
    "teams": [{"name": "t1", "clusters": ["c1"]}],
    "alertmanager": {
        "receivers": [{"name": "pager", "pagerduty": {"routing_key_file": "/run/secrets/pd"}},
                      {"name": "tickets", "slack": {"api_url_file": "/run/secrets/slack", "channel": "#gpu"}},
                      {"name": "robot", "webhook": {"url": "http://robot.example:8080/alerts"}}],
        "routing": {"by_severity": {"critical": "pager", "warning": "tickets"},
                    "by_action": {"quarantine": "robot"}},
    },
}


def am(data):
    return data["alertmanager"]


CASES = [
    ("team-references-unknown-receiver", lambda d: d["teams"][0].update(receivers={"critical": "nobody"}),
     "teams[0].receivers.critical", "unknown receiver 'nobody'; known: pager, tickets, robot"),
    ("severity-references-unknown-receiver", lambda d: am(d)["routing"]["by_severity"].update(warning="nobody"),
     "alertmanager.routing.by_severity.warning", "unknown receiver 'nobody'"),
    ("action-references-unknown-receiver", lambda d: am(d)["routing"]["by_action"].update(reset="nobody"),
     "alertmanager.routing.by_action.reset", "unknown receiver 'nobody'"),
    ("route-for-a-severity-no-alert-has", lambda d: (
        am(d)["routing"]["by_severity"].update(info="tickets"),
        d.update(alerts={"GPUXidApplication": {"enabled": False}})),
     "alertmanager.routing.by_severity.info", "no enabled alert has severity info: this route can never match"),
    ("route-for-an-action-of-disabled-alerts", lambda d: (
        am(d)["routing"]["by_action"].update(preempt="robot"),
        d.update(alerts={"GPUPowerCritical": {"enabled": False}})),
     "alertmanager.routing.by_action.preempt", "no enabled alert has action preempt"),
    ("team-route-that-can-never-match", lambda d: (
        d["teams"][0].update(receivers={"info": "pager"}),
        d.update(alerts={"GPUXidApplication": {"enabled": False}})),
     "teams[0].receivers.info", "this route can never match"),
    ("receiver-without-its-secret-file", lambda d: am(d)["receivers"][0].update(pagerduty={}),
     "alertmanager.receivers[0].pagerduty.routing_key_file", "required key missing"),
    ("inline-pagerduty-key",
     lambda d: am(d)["receivers"][0].update(pagerduty={"routing_key": "abc", "routing_key_file": "/x"}),
     "alertmanager.receivers[0].pagerduty.routing_key",
     "'routing_key' would put a secret into the spec; write it to a file and give routing_key_file instead"),
    ("inline-slack-url",
     lambda d: am(d)["receivers"][1].update(slack={"api_url": "https://hooks.slack.com/x", "api_url_file": "/x"}),
     "alertmanager.receivers[1].slack.api_url", "give api_url_file instead"),
    ("inline-smtp-password", lambda d: am(d)["receivers"].append(
        {"name": "mail", "email": {"to": "a@x", "from": "b@x", "smarthost": "smtp:587", "auth_password": "pw"}}),
     "alertmanager.receivers[3].email.auth_password", "give auth_password_file instead"),
    ("webhook-url-with-credentials", lambda d: am(d)["receivers"][2].update(
        webhook={"url": "http://user:pw@robot.example/alerts"}),
     "alertmanager.receivers[2].webhook.url", "must not carry credentials"),
    ("email-user-without-password-file", lambda d: am(d)["receivers"].append(
        {"name": "mail", "email": {"to": "a@x", "from": "b@x", "smarthost": "smtp:587", "auth_username": "u"}}),
     "alertmanager.receivers[3].email.auth_password_file", "auth_username needs auth_password_file"),
    ("duplicate-receiver-names", lambda d: am(d)["receivers"].append(
        {"name": "pager", "webhook": {"url": "http://x.example/"}}),
     "alertmanager.receivers[3].name", "duplicate receiver name 'pager'"),
    ("receiver-of-two-kinds", lambda d: am(d)["receivers"][2].update(slack={"api_url_file": "/s"}),
     "alertmanager.receivers[2]", "exactly one of webhook, slack, pagerduty, email; found webhook, slack"),
    ("receiver-of-no-kind", lambda d: am(d)["receivers"].append({"name": "empty"}),
     "alertmanager.receivers[3]", "found none"),
    ("reserved-receiver-name", lambda d: am(d)["receivers"].append(
        {"name": "gpuobs-discard", "webhook": {"url": "http://x.example/"}}),
     "alertmanager.receivers[3].name", "is the receiver gpuobs generates"),
    ("inhibition-over-a-label-no-alert-carries", lambda d: am(d).update(
        inhibit_rules=[{"source": {"alertname": "GPUMissing"}, "target": {"severity": "warning"},
                        "equal": ["rack_row"]}]),
     "alertmanager.inhibit_rules[0].equal[0]", "no gpuobs alert carries label 'rack_row'"),
    ("inhibition-matching-a-label-no-alert-carries", lambda d: am(d).update(
        inhibit_rules=[{"source": {"service": "db"}, "target": {"severity": "warning"}, "equal": ["host"]}]),
     "alertmanager.inhibit_rules[0].source.service", "the rule would never match"),
    ("inhibition-without-equal", lambda d: am(d).update(
        inhibit_rules=[{"source": {"alertname": "GPUMissing"}, "target": {"severity": "warning"}, "equal": []}]),
     "alertmanager.inhibit_rules[0].equal", "must list at least one item"),
    ("unknown-mute-interval", lambda d: am(d)["routing"].update(mute_warnings_outside="office"),
     "alertmanager.routing.mute_warnings_outside", "unknown time interval 'office'; known: none"),
    ("bad-weekday", lambda d: am(d).update(time_intervals=[{"name": "office", "weekdays": ["monday:fri"]}]),
     "alertmanager.time_intervals[0].weekdays[0]", "'monday:fri' is not a weekday"),
    ("bad-time-zone", lambda d: am(d).update(time_intervals=[{"name": "office", "location": "Mars/Base"}]),
     "alertmanager.time_intervals[0].location", "unknown time zone 'Mars/Base'"),
    ("bad-time", lambda d: am(d).update(time_intervals=[{"name": "office", "times": [
        {"start_time": "8:00", "end_time": "18:00"}]}]),
     "alertmanager.time_intervals[0].times[0].start_time", "does not have the required form"),
    ("group-by-a-label-no-alert-carries", lambda d: am(d)["routing"].update(group_by=["datacenter"]),
     "alertmanager.routing.group_by[0]", "no gpuobs alert carries label 'datacenter'"),
    ("team-receivers-without-alertmanager", lambda d: (
        d.pop("alertmanager"), d["teams"][0].update(receivers={"critical": "pager"})),
     "teams[0].receivers", "team receivers need an alertmanager section"),
]


def test_base_is_valid(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_spec(path).alertmanager.receivers[0].name == "pager"


@pytest.mark.parametrize("name, change, path, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_alertmanager_section(tmp_path, name, change, path, fragment):
    assert_one_problem(tmp_path, BASE, change, path, fragment)


def test_expected_receivers_follow_the_policy(tmp_path):
    path = tmp_path / "spec.yaml"
    data = changed(BASE, lambda d: d["teams"][0].update(receivers={"warning": None}))
    path.write_text(yaml.safe_dump(data))
    model = load_model(path)
    assert expected_receivers(model, "critical", "quarantine", "t1") == ["robot", "pager"]
    assert expected_receivers(model, "warning", "notify", "t1") == ["gpuobs-discard"]
    assert expected_receivers(model, "warning", "notify", None) == ["tickets"]
    assert expected_receivers(model, "info", "notify", None) == ["gpuobs-discard"]


@needs("amtool")
@needs("promtool")
def test_generated_route_tests_catch_a_broken_tree(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(changed(BASE, lambda d: d["teams"][0].update(receivers={"critical": "tickets"}))))
    model = load_model(path)
    out = tmp_path / "out"
    write_tree(out, render(model))
    config = out / "alertmanager" / "alertmanager.yml"
    cases = yaml.safe_load((out / ROUTE_TESTS).read_text())["tests"]
    assert "route tests passed" in amtool_route_tests(config, cases)
    config.write_text(config.read_text().replace("continue: true", "continue: false"))
    with pytest.raises(ToolError, match="expected robot,tickets; amtool said: robot"):
        amtool_route_tests(config, cases)


def test_application_xids_reach_the_owning_team_as_info_never_the_fleet_pager(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(changed(BASE, lambda d: d["teams"][0].update(
        receivers={"critical": "pager", "info": "tickets"}))))
    model = load_model(path)
    tests = [t for t in route_tests(model) if t["labels"]["alertname"] == "GPUXidApplication"]
    assert tests and all(t["labels"]["severity"] == "info" for t in tests)
    assert {t["labels"].get("team"): t["receivers"] for t in tests} == {"t1": ["tickets"]}
    # The fleet's routing sends info nowhere: a host without a team hears nothing of its application XIDs.
    assert expected_receivers(model, "info", "notify", None) == ["gpuobs-discard"]
    fleet = {t["name"]: t["receivers"] for t in route_tests(load_model(ROOT / "specs" / "fleet.yaml"))
             if t["labels"]["alertname"] == "GPUXidApplication"}
    # Each of the example fleet's teams names its own info receiver.
    assert sorted(map(tuple, fleet.values())) == [("inference-mail",), ("training-jobs",)], fleet


def _xid_inhibitions(model) -> dict[tuple[str, str], dict]:
    """Generated inhibit rules whose target is one XID: {(target alert, code): rule}."""
    found = {}
    for rule in inhibit_rules(model):
        target = dict(m.replace('"', "").split("=", 1) for m in rule["target_matchers"] if "!" not in m)
        if "xid" in target:
            found[(target["alertname"], target["xid"])] = rule
    return found


def test_follow_on_xids_are_inhibited_by_their_cause_on_the_same_gpu():
    model = load_model(ROOT / "specs" / "fleet.yaml")
    rules = _xid_inhibitions(model)
    assert set(rules) == {("GPUXidApplication", "43"), ("GPUXidApplication", "45"), ("GPUXidDrain", "94")}, \
        "63, 171 and 172 raise nothing, so nothing to hold back"
    teardown = rules[("GPUXidApplication", "45")]
    assert teardown["equal"] == ["cluster", "host", "gpu"]
    codes = next(m for m in teardown["source_matchers"] if m.startswith("xid=~")).split('"')[1].split("|")
    assert {"13", "31", "48", "79", "119"} <= set(codes) and not {"43", "45", "63"} & set(codes)
    assert rules[("GPUXidDrain", "94")]["source_matchers"] == ['alertname=~"GPUXidReset"', 'xid=~"95"']


def test_no_inhibition_targets_a_disabled_xid_alert(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(changed(BASE, lambda d: d.update(alerts={"GPUXidApplication": {"enabled": False}}))))
    assert set(_xid_inhibitions(load_model(path))) == {("GPUXidDrain", "94")}


@needs("amtool")
def test_an_idle_allocation_reaches_the_team_owning_its_host(tmp_path):
    """GPUAllocatedIdle carries the team of the host from the series it reads, so the team's route
    takes it (the fleet's where no team owns the host); a severity the spec gives it moves it with
    it. Checked by Alertmanager's own router on the alert's labels as Prometheus sends them."""
    def spec(severity=None):
        def change(d):
            d["clusters"].append({"name": "c2"})
            d["hosts"].append({**d["hosts"][0], "name": "h2", "cluster": "c2", "address": "127.0.0.2"})
            d["teams"][0]["receivers"] = {"warning": "robot", **({"info": "pager"} if severity == "info" else {})}
            d["efficiency"] = {"currency": "EUR"}
            if severity:
                d["alerts"] = {"GPUAllocatedIdle": {"severity": severity}}
        return changed(BASE, change)

    for severity, owned, unowned in ((None, "robot", "tickets"), ("info", "pager", "gpuobs-discard")):
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec(severity)))
        model = load_model(path)
        out = tmp_path / (severity or "default")
        write_tree(out, render(model))
        rules = yaml.safe_load((out / "prometheus" / "rules" / "alerts.yml").read_text())
        (labels,) = [r["labels"] for g in rules["groups"] for r in g["rules"]
                     if r.get("alert") == "GPUAllocatedIdle" and r["labels"]["held_by"] == "pod"]
        fired = {**labels, "alertname": "GPUAllocatedIdle", "gpu": "3", "gpu_model": "A100-SXM4-80GB",
                 "namespace": "research", "pod": "notebook-3", "container": "lab"}
        config = out / "alertmanager" / "alertmanager.yml"
        assert amtool_receivers(config, {**fired, "cluster": "c1", "host": "h1", "team": "t1"}) == [owned]
        assert amtool_receivers(config, {**fired, "cluster": "c2", "host": "h2"}) == [unowned]
        routes = yaml.safe_load((out / "alertmanager" / "tests" / "routes.yml").read_text())["tests"]
        assert {(t["labels"].get("team"), tuple(t["receivers"])) for t in routes
                if t["labels"]["alertname"] == "GPUAllocatedIdle"} == {("t1", (owned,)), (None, (unowned,))}
