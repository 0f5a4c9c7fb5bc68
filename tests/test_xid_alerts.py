"""The XID alert tiers, derived from NVIDIA's XID catalog (gpuobs/alerts/xid.py): every code lands in
exactly one tier or raises nothing, and the tiers' promtool cases cover each tier's bounds."""

from gpuobs.alerts import BY_NAME
from gpuobs.alerts import xid as tiers
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


def test_ranges_and_gaps_cover_exactly_their_codes():
    codes = (8, 11, 13, 39, 40, 41, 126, 127)
    runs = tiers.ranges(codes)
    assert runs == [(8, 8), (11, 11), (13, 13), (39, 41), (126, 127)]
    assert tiers._gaps(codes)[:3] == [(1, 7), (9, 10), (12, 12)] and tiers._gaps(codes)[-1] == (128, None)
    assert tiers._gaps(CATALOG) == [(max(CATALOG) + 1, None)], "the catalog has no holes"


def test_the_gauge_of_last_xids_is_filtered_by_runs_and_labelled_by_value():
    expr = tiers._value_filter("g", [(8, 8), (39, 41), (173, None)])
    assert expr == "g == 8 or g >= 39 <= 41 or g >= 173"


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
