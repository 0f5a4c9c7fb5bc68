"""The generated Prometheus output passes promtool, and its generated unit tests can fail."""

import copy
import re

import pytest
import yaml
from promtool_helpers import generated_folder, only_tests

from conftest import MINIMAL_SPEC, ROOT, SPECS, needs
from gpuobs import tools
from gpuobs.errors import ToolError
from gpuobs.generate import load_model
from gpuobs.validate import check_with_tools, run_tests

pytestmark = [needs("promtool"), needs("amtool")]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_committed_output_passes_promtool(spec):
    output = ROOT / "generated" / load_model(spec).name
    said = "".join(check_with_tools(output))
    assert "SUCCESS" in said
    assert "SUCCESS" in run_tests(output)


def test_every_alert_has_a_firing_and_a_quiet_case():
    for spec in SPECS:
        output = ROOT / "generated" / load_model(spec).name / "prometheus"
        alerts = [r["alert"] for g in yaml.safe_load((output / "rules" / "alerts.yml").read_text())["groups"]
                  for r in g["rules"] if "alert" in r]
        checks = [c for t in yaml.safe_load((output / "tests" / "alerts.yml").read_text())["tests"]
                  for c in t["alert_rule_test"]]
        for alert in alerts:
            mine = [c for c in checks if c["alertname"] == alert]
            assert any(c["exp_alerts"] for c in mine), f"{spec.name}: {alert} has no case that must fire"
            assert any(not c["exp_alerts"] for c in mine), f"{spec.name}: {alert} has no case that must not fire"


# Specs whose alerts the generated tests once left without a case that fires: the cases they get
# now pass promtool. (alert, change to MINIMAL_SPEC)
EDGES = {
    "health threshold below three components": ("GPUHealthLow", {
        "thresholds": {"A100-SXM4-80GB": {"health_score_warning": 0.3}}}),
    "health threshold below every component": ("GPUHealthLow", {
        "thresholds": {"A100-SXM4-80GB": {"health_score_warning": 1e-9}}}),
    "prediction waiting longer than its horizon": ("GPUThermalCriticalPredicted", {
        "alerts": {"GPUThermalCriticalPredicted": {"for": "16m"}}}),
    "no prediction horizon": ("GPUThermalCriticalPredicted", {
        "thresholds": {"A100-SXM4-80GB": {"thermal_prediction_horizon": "0"}}}),
    "XID waiting longer than the rule's window": ("GPUXidReset", {"alerts": {"GPUXidReset": {"for": "14m"}}}),
    "framebuffer full": ("GPUMemoryPressure", {
        "alerts": {"GPUMemoryPressure": {}}, "thresholds": {"A100-SXM4-80GB": {"memory_used_warning_ratio": 1}}}),
}


@pytest.mark.parametrize("alert, change", EDGES.values(), ids=EDGES)
def test_cases_for_edge_specs_pass_promtool(tmp_path, alert, change):
    output = generated_folder(tmp_path, {**copy.deepcopy(MINIMAL_SPEC), "name": "edge", **change})
    test_file = output / "prometheus" / "tests" / "alerts.yml"
    only_tests(test_file, alert)
    assert "FAILED" not in tools.promtool_test_rules([test_file])


def test_recording_tests_for_low_warning_levels_pass_promtool(tmp_path):
    """Their healthy GPU stays below the power and memory warning levels (no alert counts it unhealthy)."""
    low = {"power_warning_ratio": 0.001, "power_critical_ratio": 0.002, "memory_used_warning_ratio": 0.0001}
    output = generated_folder(tmp_path, {**copy.deepcopy(MINIMAL_SPEC), "name": "low",
                                         "alerts": {"GPUMemoryPressure": {}}, "thresholds": {"A100-SXM4-80GB": low}})
    assert "FAILED" not in tools.promtool_test_rules([output / "prometheus" / "tests" / "recording.yml"])


MUTATIONS = [
    # (what is broken, file, pattern, replacement, tests that must catch it)
    ("warning threshold off by one", "recording.yml",
     r"(\(DCGM_FI_DEV_GPU_TEMP\) \+) 80", r"\1 81", "GPUThermalWarning gpu-exporter A100-SXM4-80GB warning figure"),
    ("`>` turned into `>=`", "alerts.yml", r"DCGM_FI_DEV_POWER_USAGE > (on .* gpu:power_warning_threshold)",
     r"DCGM_FI_DEV_POWER_USAGE >= \1", "GPUPowerSpike"),
    ("`for` dropped", "alerts.yml", r"(alert: GPUThermalWarning\n(?:.*\n)*?    for: )60s", r"\g<1>0s",
     "GPUThermalWarning"),
    ("XID code missing from the list", "alerts.yml", r'xid=~"54\|64\|79"', 'xid=~"54|64"', "GPUXidQuarantine"),
    ("inventory count wrong", "inventory.yml", r"vector\(8\)", "vector(7)", "GPUMissing"),
    # The lesson of issue 16: an increase() misses a GPU first scraped with errors, and resolves early.
    ("uncorrectable ECC read as an increase", "alerts.yml", r"\(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL > 0\)",
     "(increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[5m]) > 0)", "GPUEccUncorrectable"),
    ("recovery action 1 (GPU reset) missed", "alerts.yml", r"DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION > 0",
     "DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION > 1", "GPURecoveryActionPending"),
]


@pytest.mark.parametrize("what, file, pattern, replacement, tests", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_generated_tests_catch_a_broken_rule(tmp_path, what, file, pattern, replacement, tests):
    output = generated_folder(tmp_path, {**copy.deepcopy(MINIMAL_SPEC), "name": "mutant"})
    test_file = output / "prometheus" / "tests" / "alerts.yml"
    only_tests(test_file, tests)
    run_tests(output)  # the unbroken rules pass the selected tests
    rules = output / "prometheus" / "rules" / file
    broken, count = re.subn(pattern, replacement, rules.read_text())
    assert count, f"mutation {what!r} did not apply"
    rules.write_text(broken)
    with pytest.raises(ToolError, match="FAILED"):
        tools.promtool_test_rules([test_file])


def test_fixed_thresholds_are_constants_per_model_and_their_cases_catch_an_off_by_one(tmp_path):
    """On dcgm-exporter's default counters no GPU reports a limit of its own, so the thermal and
    power rules of the fast group compare with each model's figure in the rule: no join with the
    recorded thresholds, every evaluation. Two models with different figures need a matcher each."""
    spec = {**copy.deepcopy(MINIMAL_SPEC), "name": "fixed",
            "clusters": [{"name": "c1", "exporter": {"kind": "dcgm-exporter", "counters": "default"}}]}
    spec["hosts"].append({"name": "h2", "cluster": "c1", "address": "127.0.0.2",
                          "gpus": {"model": "H100-SXM5-80GB", "count": 8}})
    output = generated_folder(tmp_path, spec)
    rules = output / "prometheus" / "rules" / "alerts.yml"
    (fast,) = [g for g in yaml.safe_load(rules.read_text())["groups"] if g["name"] == "gpuobs.alerts"]
    thermal_and_power = [r for r in fast["rules"]
                         if re.match(r"gpu:(temperature|power_usage)_past_warning|GPU(Thermal|Power)",
                                     r.get("record") or r["alert"])]
    comparing = [r for r in thermal_and_power if r.get("record") or "Critical" in r["alert"]]
    assert len(thermal_and_power) == 6 and len(comparing) == 4
    assert not any("_threshold:" in r["expr"] for r in thermal_and_power)
    for rule in comparing:
        assert 'gpu_model="A100-SXM4-80GB"' in rule["expr"] and 'gpu_model="H100-SXM5-80GB"' in rule["expr"], rule
    test_file = output / "prometheus" / "tests" / "alerts.yml"
    document = yaml.safe_load(test_file.read_text())
    document["tests"] = [t for t in document["tests"] if re.match(r"GPU(Thermal|Power)(Warning|Critical|Spike) ",
                                                                    t["name"])]
    assert any("H100-SXM5-80GB" in t["name"] for t in document["tests"])
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "FAILED" not in tools.promtool_test_rules([test_file])
    broken, count = re.subn(r'(celsius\{gpu_model="H100-SXM5-80GB"\} >= )(\d+)',
                            lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", rules.read_text())
    assert count == 1
    rules.write_text(broken)
    with pytest.raises(ToolError, match="FAILED"):
        tools.promtool_test_rules([test_file])
