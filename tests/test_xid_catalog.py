"""NVIDIA's XID catalog as data (gpuobs/xid_catalog.py): complete, consistent, and mapped onto our
severities, actions and classes; the relations between codes point at codes that exist."""

import dataclasses

import pytest

from gpuobs import xid_catalog
from gpuobs.alerts import ACTIONS, SEVERITIES
from gpuobs.xid_catalog import CATALOG, RELATIONS, RESOLUTIONS, lookup


def test_every_code_of_the_catalog_is_there_once_in_order():
    codes = [row[0] for row in xid_catalog._ROWS]
    assert codes == list(range(1, 173)), "the catalog runs from 1 to 172 without gaps"
    assert len({row[1] for row in xid_catalog._ROWS}) == len(codes), "mnemonics are unique"


def test_the_tables_are_consistent():
    assert xid_catalog.check() == []


def test_every_mapping_is_one_of_ours():
    for entry in CATALOG.values():
        assert (entry.severity in SEVERITIES, entry.action in ACTIONS) == (True, True), entry
        assert entry.xid_class in xid_catalog.CLASSES, entry
        assert entry.resolution is None or entry.resolution in RESOLUTIONS, entry
        assert set(entry.applies_to) <= set(xid_catalog.PRODUCTS), entry
    used = {e.xid_class for e in CATALOG.values()} | {"unknown"}
    assert used == set(xid_catalog.CLASSES), "no class without a code"


def test_a_departure_from_nvidias_resolution_says_why():
    for entry in CATALOG.values():
        if entry.resolution is None:
            assert entry.why, entry
            continue
        default = RESOLUTIONS[entry.resolution]
        if (entry.severity, entry.action, entry.xid_class) != (default.severity, default.action, default.xid_class):
            assert entry.why, entry


@pytest.mark.parametrize("code", [13, 31, 43, 45, 8, 11, 69, 137])
def test_application_level_codes_go_to_the_owning_team_as_info(code):
    entry = CATALOG[code]
    assert (entry.app_level, entry.severity, entry.action) == (True, "info", "notify")


def test_the_codes_the_fleet_must_act_on():
    bus = CATALOG[79]
    assert (bus.resolution, bus.severity, bus.action) == ("RESTART_BM", "critical", "quarantine")
    assert (CATALOG[48].resolution, CATALOG[48].action) == ("WORKFLOW_XID_48", "reset")
    assert (CATALOG[95].resolution, CATALOG[95].action) == ("RESET_GPU", "reset")
    assert (CATALOG[94].resolution, CATALOG[94].severity, CATALOG[94].action) == ("RESTART_APP", "warning", "drain")
    assert (CATALOG[74].resolution, CATALOG[74].action) == ("WORKFLOW_NVLINK_ERR", "drain")
    assert {c for c in (62, 119, 120, 46, 109) if CATALOG[c].action == "reset"} == {62, 119, 120, 46, 109}
    assert not CATALOG[1].in_use and CATALOG[1].resolution == "CONTACT_SUPPORT"


def test_xid_48_alone_resets_and_with_a_remap_event_drains_first():
    (combination,) = [r for r in RELATIONS if r.kind == "combination"]
    assert (combination.target, set(combination.sources)) == (48, {63, 64})
    assert (combination.severity, combination.action) == ("critical", "drain")
    assert CATALOG[48].action == "reset"


def test_follow_ons_and_superseded_codes_are_inhibited_by_their_causes():
    by_target = {(r.kind, r.target): set(r.sources) for r in RELATIONS}
    assert {13, 31, 48, 79, 94, 95, 119} <= by_target["follow_on", 45]
    assert {13, 31} <= by_target["follow_on", 43]
    assert by_target["follow_on", 63] == {48, 94, 95}
    assert by_target["supersedes", 94] == {95}, "contained is superseded by uncontained"
    assert xid_catalog.follow_ons(13) == (43, 45)
    assert 45 not in by_target["follow_on", 45] and 43 not in by_target["follow_on", 45]


def test_a_relation_to_a_code_outside_the_catalog_is_caught():
    broken = dataclasses.replace(RELATIONS[0], sources=(13, 500))
    original = xid_catalog.RELATIONS
    xid_catalog.RELATIONS = (broken,)
    try:
        assert xid_catalog.check() == ["follow_on of XID 43: codes [500] not in the catalog"]
    finally:
        xid_catalog.RELATIONS = original


def test_xid_154_carries_the_drivers_recovery_action():
    assert CATALOG[154].resolution == "XID_154"
    actions = {text: (severity, action) for text, (_, severity, action) in xid_catalog.RECOVERY_ACTIONS.items()}
    assert actions["Node Reboot Required"] == ("critical", "quarantine")
    assert actions["Drain and Reset"] == ("critical", "drain")
    assert [n for n, *_ in xid_catalog.RECOVERY_ACTIONS.values()] == [0, 1, 2, 3, 4], "NVML's numbers"


@pytest.mark.parametrize("code", [999, 173, 0])
def test_an_unknown_code_is_an_entry_of_its_own_class_and_still_alerts(code):
    entry = lookup(code)
    assert (entry.code, entry.xid_class, entry.severity) == (code, "unknown", "warning")
    assert lookup(48) is CATALOG[48]
