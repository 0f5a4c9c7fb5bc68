"""The XID alert tiers, derived from NVIDIA's XID catalog (gpuobs/alerts/xid.py): every code lands in
exactly one tier or raises nothing, and the tiers' promtool cases cover each tier's bounds."""

from conftest import ROOT
from gpuobs.alerts import BY_NAME
from gpuobs.alerts import xid as tiers
from gpuobs.generate import load_model
from gpuobs.generators.rules import rule_groups
from gpuobs.series import names_of
from gpuobs.xid_catalog import CATALOG, NVML_UNKNOWN_XID

TIERS = [a for a in tiers.ALERTS if a.name != "GPUXidUnknown"]


def test_every_catalog_code_lands_in_exactly_one_tier_or_none():
    listed = [c for a in TIERS for c in a.xid_codes]
    assert len(listed) == len(set(listed)), "no code in two tiers"
    silent = set(CATALOG) - set(listed)
    assert silent == {c for c, e in CATALOG.items() if e.severity == "info" and not e.app_level}, \
        "only informational codes raise nothing"
    for code in silent:
        assert tiers.alert_for(code) == ""
    for alert in TIERS:
        assert alert.xid_codes == tiers.codes_of(alert.name) and alert.xid_codes, alert.name


def test_a_tier_has_the_severity_and_action_of_its_codes():
    for alert in TIERS:
        for code in alert.xid_codes:
            entry = CATALOG[code]
            assert entry.severity == alert.severity, (alert.name, code)
            # XID 156 is a warning that wants a reset when convenient: the drain tier's.
            assert entry.action == alert.action or (code, alert.name) == (156, "GPUXidDrain"), (alert.name, code)


def test_the_gaps_the_failure_mix_found_are_closed():
    assert {46, 109} <= set(BY_NAME["GPUXidReset"].xid_codes)
    assert 61 not in BY_NAME["GPUXidReset"].xid_codes, "unused on Ampere and later"
    assert not {63, 92} & set(BY_NAME["GPUXidDrain"].xid_codes), "IGNORE in the catalog"
    assert {13, 31, 43, 45} <= set(BY_NAME["GPUXidApplication"].xid_codes)
    assert BY_NAME["GPUXidApplication"].severity == "info"
    assert {tiers.alert_for(c) for c in (173, NVML_UNKNOWN_XID)} == {"GPUXidUnknown"}
    assert BY_NAME["GPUXidUnknown"].xid_codes == ()


def test_the_catalog_has_no_holes():
    assert set(CATALOG) == set(range(1, max(CATALOG) + 1))


def test_the_tiers_select_codes_from_one_recording_that_reads_each_xid_series_once():
    """On dcgm-exporter's default counters every GPU serves the last-value gauge: reading it once
    per run of codes in each of six tiers read it dozens of times per evaluation."""
    model = load_model(ROOT / "specs" / "lab.py")
    alerting, _ = rule_groups(model)
    fast = next(g for g in alerting if g["name"] == "gpuobs.alerts")["rules"]
    (recent,) = [r for r in fast if r.get("record") == tiers.RECENT]
    gauges = [n for n in names_of(model) if n.serves("xid_last")]
    assert len(gauges) == 2 and recent["expr"].count("DCGM_FI_DEV_XID_ERRORS") == len(gauges), "once per setup"
    xid_alerts = [r for r in fast if r.get("alert", "").startswith("GPUXid")]
    assert fast.index(recent) < fast.index(xid_alerts[0]), "recorded before the tiers read it, in the same group"
    for rule in xid_alerts:
        assert rule["expr"].startswith(tiers.RECENT + "{xid"), rule["alert"]


def test_cases_sample_each_tier_with_its_bounds():
    for alert in TIERS:
        picked = tiers.sample(alert.xid_codes)
        assert len(picked) == min(len(alert.xid_codes), tiers.CASE_CODES)
        assert (picked[0], picked[-1]) == (min(alert.xid_codes), max(alert.xid_codes))
        assert set(picked) <= set(alert.xid_codes)
    assert tiers.QUIET_CODE in CATALOG and tiers.alert_for(tiers.QUIET_CODE) == ""


def test_proofs_inject_a_code_of_their_tier():
    for alert in tiers.ALERTS:
        code = int(alert.proof.labels["xid"])
        assert tiers.alert_for(code) == alert.name, alert.name
        assert any(params.get("code") == code or name == f"xid-{code}" for name, params in alert.proof.faults)
