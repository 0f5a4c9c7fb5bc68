"""The generated promtool tests as data: each enabled alert has a case that must fire and one that
must not, whatever valid thresholds and `for` a spec sets; the cases wait for the rule groups that
feed an alert (tests/test_promtool.py runs them through promtool)."""

import copy

import pytest
import yaml

from conftest import VARIANTS
from gpuobs.alerts import ALERTS
from gpuobs.generate import load_model
from gpuobs.generators import promtests, rules
from gpuobs.generators.promtests import chain_lengths

# VARIANTS' models; A10 runs dcgm-exporter's default counters, which serve no clock events, so its
# health score never falls below 0.2 (a lower threshold is a spec error: tests/test_spec_errors.py).
MODELS = ("L40S", "V100-SXM2-32GB", "A10", "H200-SXM5-141GB", "a800-pcie")
EVERY_ALERT = [a.name for a in ALERTS]


def thresholds(**values) -> dict:
    return {"thresholds": {model: dict(values) for model in MODELS}}


def every_alert(**override) -> dict:
    return {"alerts": {name: dict(override) for name in EVERY_ALERT}}


# Each threshold at the ends of its allowed range (spec/schema.py Thresholds, in the order the
# spec requires of warning and critical), each alert waiting no time and a day, in each severity
# (which moves it between rule groups), and the Prometheus settings the cases read.
EXTREMES = {
    "temperatures lowest": thresholds(gpu_temp_warning=0, gpu_temp_critical=0.5),
    "temperatures highest": thresholds(gpu_temp_warning=149.5, gpu_temp_critical=150),
    "max op offset 0": thresholds(gpu_temp_max_op_offset_warning=0),
    "max op offset 30": thresholds(gpu_temp_max_op_offset_warning=30),
    "margins widest": thresholds(gpu_temp_margin_warning=50, gpu_temp_margin_critical=-20),
    "margins lowest": thresholds(gpu_temp_margin_warning=-19.5, gpu_temp_margin_critical=-20),
    "margins highest": thresholds(gpu_temp_margin_warning=50, gpu_temp_margin_critical=49.5),
    "power ratios lowest": thresholds(power_warning_ratio=0.001, power_critical_ratio=0.002),
    "power ratios highest": thresholds(power_warning_ratio=2.999, power_critical_ratio=3),
    "power limit lowest": thresholds(power_limit_watts=0.001),
    "power limit highest": thresholds(power_limit_watts=5000),
    "memory ratio lowest": {**thresholds(memory_used_warning_ratio=0.0001), "alerts": {"GPUMemoryPressure": {}}},
    "memory ratio highest": {**thresholds(memory_used_warning_ratio=1), "alerts": {"GPUMemoryPressure": {}}},
    "counts lowest": thresholds(ecc_correctable_warning=1, nvlink_errors_warning=0, pcie_replay_warning=0),
    "counts highest": thresholds(ecc_correctable_warning=10**9, nvlink_errors_warning=10**9,
                                 pcie_replay_warning=10**9),
    "health lowest": {"thresholds": {**thresholds(health_score_warning=1e-9)["thresholds"],
                                     "A10": {"health_score_warning": 0.21}}},
    "health below the first component": thresholds(health_score_warning=0.79),
    "health highest": thresholds(health_score_warning=1),
    "no prediction horizon": thresholds(thermal_prediction_horizon="0"),
    "a year's prediction horizon": thresholds(thermal_prediction_horizon="1y"),
    "every alert at once": every_alert(**{"for": "0s"}),
    "every alert after a day": every_alert(**{"for": "1d"}),
    "every alert critical": every_alert(severity="critical"),
    "every alert a warning": every_alert(severity="warning"),
    "every alert info": every_alert(severity="info"),
    "predicted later than its horizon": {"alerts": {"GPUThermalCriticalPredicted": {"for": "30m"}}},
    "stale after one scrape": {"prometheus": {**VARIANTS["prometheus"], "exporter_stale_after": "15s"}},
    "stale after a day": {"prometheus": {**VARIANTS["prometheus"], "exporter_stale_after": "1d"}},
    "evaluated every second": {"prometheus": {**VARIANTS["prometheus"], "evaluation_interval": "1s"}},
    "evaluated every hour": {"prometheus": {**VARIANTS["prometheus"], "evaluation_interval": "1h"},
                             "efficiency": {**VARIANTS["efficiency"], "idle": {"for": "2h"}}},
}


def model_of(tmp_path, change: dict):
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump({**copy.deepcopy(VARIANTS), **change}, sort_keys=False))
    return load_model(path)


@pytest.mark.parametrize("change", EXTREMES.values(), ids=EXTREMES)
def test_every_enabled_alert_has_a_firing_and_a_quiet_case(tmp_path, change):
    model = model_of(tmp_path, change)
    documents = rules.generate(model)
    enabled = {r["alert"] for g in documents[rules.ALERT_RULES]["groups"] for r in g["rules"] if "alert" in r}
    checks = [c for t in promtests.generate(model)["prometheus/tests/alerts.yml"]["tests"]
              for c in t["alert_rule_test"]]
    firing = {c["alertname"] for c in checks if c["exp_alerts"]}
    quiet = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert not enabled - firing, f"no case must fire: {sorted(enabled - firing)}"
    assert not enabled - quiet, f"no case must stay quiet: {sorted(enabled - quiet)}"


def test_chain_lengths_count_the_groups_feeding_an_alert():
    groups = [
        {"name": "a", "rules": [{"alert": "Raw", "expr": "up == 0"},
                                {"record": "x:early:sum", "expr": "sum(up)"},
                                {"alert": "Early", "expr": "x:early:sum > 1"},
                                {"alert": "Late", "expr": "x:late:sum > 1"},
                                {"record": "x:late:sum", "expr": "sum(up)"}]},
        {"name": "b", "rules": [{"record": "x:b:sum", "expr": "x:early:sum + 1"},
                                {"alert": "Other", "expr": "x:b:sum > 1"}]},
        {"name": "c", "rules": [{"alert": "Far", "expr": "x:b:sum > 1 and x:early:sum > 0"}]},
    ]
    # Rules of one group run in order: only a series recorded after the alert, or in another group,
    # may be a step late.
    assert chain_lengths(groups) == {"Raw": 1, "Early": 1, "Late": 2, "Other": 2, "Far": 3}

