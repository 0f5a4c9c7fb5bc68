"""The rule groups' tiers: what runs every evaluation, what less often, and the property detection
rests on: an alert of the fast group reads only raw series, signals recorded before it in its own
group, or series that follow configuration (thresholds, inventory)."""

import re

import pytest
import yaml

from conftest import MINIMAL_SPEC, SPECS
from gpuobs.alerts import BLIND_ALERT
from gpuobs.generate import load_model
from gpuobs.generators import rules
from gpuobs.generators.rules import (
    CONFIGURATION,
    CONFIGURATION_GROUPS,
    EVALUATION_ORDER,
    SLOW,
    STATIC,
    generate,
    tier_interval,
)


def groups_of(model) -> list[dict]:
    return [g for document in generate(model).values() for g in document["groups"]]


def model_of(tmp_path, **extra):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL_SPEC, **extra}))
    return load_model(path)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_fast_alerts_read_nothing_recorded_by_another_evaluation(spec):
    model = load_model(spec)
    groups = groups_of(model)
    recorded_in = {r["record"]: g["name"] for g in groups for r in g["rules"] if "record" in r}
    (fast,) = [g for g in groups if g["name"] == "gpuobs.alerts"]
    assert "interval" not in fast
    seen = set()
    for rule in fast["rules"]:
        if "record" in rule:
            seen.add(rule["record"])
            continue
        names = set(re.findall(r"[a-zA-Z_:][\w:]*", rule["expr"])) & set(recorded_in)
        late = {n for n in names - seen if recorded_in[n] not in CONFIGURATION_GROUPS}
        assert not late, f"{spec.name}: {rule['alert']} reads {late}, recorded by other groups' evaluations"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_critical_alerts_run_every_evaluation_and_slow_warnings_later(spec):
    model = load_model(spec)
    where = {r["alert"]: g["name"] for g in groups_of(model) for r in g["rules"] if "alert" in r}
    for alert in model.alerts:
        if alert.name not in where or alert.name == BLIND_ALERT:
            continue
        expected = "gpuobs.alerts.slow" if rules.is_slow(model, alert) else "gpuobs.alerts"
        assert where[alert.name] == expected, alert.name
        if alert.severity == "critical":
            assert where[alert.name] == "gpuobs.alerts"
    assert {g["name"] for g in groups_of(model)} <= set(EVALUATION_ORDER)


def test_a_shorter_for_in_the_spec_moves_a_warning_to_the_fast_group(tmp_path):
    default = model_of(tmp_path)
    assert rules.is_slow(default, next(a for a in default.alerts if a.name == "GPUEccCorrectableSpike"))
    faster = model_of(tmp_path, alerts={"GPUEccCorrectableSpike": {"for": "1m"}})
    where = {r["alert"]: g["name"] for g in groups_of(faster) for r in g["rules"] if "alert" in r}
    assert where["GPUEccCorrectableSpike"] == "gpuobs.alerts"


@pytest.mark.parametrize("every, slow, static, configuration", [
    ("15s", "60s", "120s", "240s"), ("1s", "4s", "8s", "16s"), ("30s", "60s", "120s", "240s"),
    ("2m", "120s", "120s", "240s")])
def test_tier_intervals_scale_with_the_evaluation_interval_and_stay_inside_the_lookback(tmp_path, every, slow, static,
                                                                                       configuration):
    model = model_of(tmp_path, prometheus={"evaluation_interval": every, "scrape_interval": every})
    assert [tier_interval(model, tier) for tier in (SLOW, STATIC, CONFIGURATION)] == [slow, static, configuration]
    intervals = {g["name"]: g.get("interval") for g in groups_of(model)}
    assert intervals["gpuobs.inventory"] == intervals["gpuobs.health"] == static
    assert intervals["gpuobs.aggregates"] == intervals["gpuobs.gpu"] == slow
    assert intervals["gpuobs.coverage"] == intervals["gpuobs.thresholds"] == configuration


def recorded_where(model, name: str) -> list[str]:
    return [g["name"] for g in groups_of(model) for r in g["rules"] if r.get("record") == name]


def alerts(model) -> set[str]:
    return {a.name for a in model.alerts}


def test_an_alert_off_by_default_is_on_when_the_spec_names_it(tmp_path):
    assert "GPUMemoryPressure" not in alerts(model_of(tmp_path))
    assert "GPUMemoryPressure" in alerts(model_of(tmp_path, alerts={"GPUMemoryPressure": {"for": "10m"}}))
    assert "GPUMemoryPressure" in alerts(model_of(tmp_path, alerts={"GPUMemoryPressure": {"enabled": True}}))
    assert "GPUMemoryPressure" not in alerts(model_of(tmp_path, alerts={"GPUMemoryPressure": {"enabled": False}}))
    assert "GPUThermalWarning" not in alerts(model_of(tmp_path, alerts={"GPUThermalWarning": {"enabled": False}}))


@pytest.mark.parametrize("override, group", [
    (None, "gpuobs.gpu"),  # off by default: only dashboards, health and aggregates read the share
    ({"enabled": True}, "gpuobs.gpu"),  # its 5m default runs in the slow tier
    ({"for": "1m"}, "gpuobs.alerts"),  # a fast alert reads it in the fast group, recorded just before
])
def test_the_framebuffer_share_is_recorded_where_its_fastest_reader_runs(tmp_path, override, group):
    model = model_of(tmp_path, **({"alerts": {"GPUMemoryPressure": override}} if override else {}))
    assert recorded_where(model, "gpu:framebuffer_used:ratio") == [group]
