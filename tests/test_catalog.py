"""The metric catalog speaks dcgm-exporter's vocabulary and is the only place names live."""

import csv
import re

import pytest

from conftest import REFERENCE, ROOT
from gpuobs import catalog

DCGM = catalog.GPUOBS_PROFILE
CSV_FILES = ["default-counters.csv", "dcp-metrics-included.csv"]


def csv_rows(name: str, include_commented: bool = False):
    path = REFERENCE / "dcgm-exporter" / name
    if not path.is_file():
        pytest.skip(f"reference file {path} not present")
    rows = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        commented = stripped.startswith("#")
        body = stripped.lstrip("# ").strip()
        if not body.startswith("DCGM_") or (commented and not include_commented):
            continue
        field, kind, _help = (c.strip() for c in next(csv.reader([body])))
        rows.append((field, kind))
    return rows


@pytest.mark.parametrize("name", CSV_FILES)
def test_every_active_dcgm_exporter_metric_is_in_the_catalog_with_its_type(name):
    by_name = {DCGM.metric(m.key): m for m in catalog.METRICS}
    for field, kind in csv_rows(name):
        if kind == "label":
            assert field in DCGM.labels.values(), f"{field} is a label row of dcgm-exporter"
            continue
        assert field in by_name, f"{field} from {name} is missing from the catalog"
        assert by_name[field].type == kind, f"{field}: catalog says {by_name[field].type}, dcgm-exporter {kind}"
        assert by_name[field].origin == "dcgm-default"


def test_the_default_counters_profile_is_dcgm_exporters_shipped_csv():
    """`counters: default` means what dcgm-exporter ships: the rules for it read exactly these."""
    shipped = [field for field, kind in csv_rows("default-counters.csv") if kind != "label"]
    assert list(catalog.DCGM_DEFAULT_COUNTERS) == shipped
    profile = catalog.dcgm_exporter_profile(catalog.DCGM_DEFAULT_COUNTERS)
    assert {profile.metric(k) for k in profile.served} == set(shipped)


def test_commented_dcgm_fields_we_use_keep_dcgm_exporters_type():
    """Fields a user enables by uncommenting their CSV line must mean what we assume."""
    by_name = {DCGM.metric(m.key): m for m in catalog.METRICS}
    commented = {f: k for f, k in csv_rows("default-counters.csv", include_commented=True)}
    for field, kind in commented.items():
        if field in by_name and kind != "label" and by_name[field].origin == "dcgm-optional":
            # RETIRED_PENDING is typed counter in the CSV but is a 0/1 flag: a gauge is right.
            if field != "DCGM_FI_DEV_RETIRED_PENDING":
                assert by_name[field].type == kind, field


def test_names_are_unique_valid_and_say_where_they_come_from():
    names = [DCGM.metric(m.key) for m in catalog.METRICS]
    assert len(names) == len(set(names))
    for metric in catalog.METRICS:
        name = DCGM.metric(metric.key)
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), name
        if metric.origin in ("gpuobs", "rules"):
            assert name.startswith("gpuobs_"), f"{name}: our additions are prefixed gpuobs_"
            if metric.type == catalog.COUNTER:
                assert name.endswith("_total"), name
        elif metric.origin == "dcgm-exporter":
            assert name.startswith("DCGM_EXP_"), f"{name}: dcgm-exporter's own counters"
        else:
            assert name.startswith("DCGM_FI_"), name
    for label in (*catalog.GPU_IDENTITY, *catalog.MIG_IDENTITY):
        assert label in DCGM.labels


def test_the_additions_the_design_asks_for_exist():
    keys = set(catalog.BY_KEY)
    assert {"power_limit", "enforced_power_limit", "fb_total", "clock_event_active", "xid_errors",
            "xid_last_seen", "inventory_expected_gpus", "gpu_info", "gpu_up", "exporter_collection_duration",
            "exporter_last_success", "exporter_collection_errors"} <= keys


def test_metric_names_live_only_in_the_catalog():
    """Generators read names from the catalog: a literal elsewhere would drift from it."""
    offenders = []
    for path in (ROOT / "gpuobs").rglob("*.py"):
        if path.name in ("catalog.py", "dcgm_fields.py"):  # the catalog, and DCGM's list of field names
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(DCGM_FI_\w+|gpuobs_[a-z_]+(total|seconds|celsius|info|up|gpus))\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_metric_the_rules_read_is_in_the_catalog():
    known = set(DCGM.metrics.values())
    rules = (ROOT / "generated" / "fleet" / "prometheus" / "rules").glob("*.yml")
    used = set()
    for path in rules:
        used |= set(re.findall(r"\b(DCGM_FI_\w+|gpuobs_\w+)\b", path.read_text()))
    assert used and used <= known, used - known


def test_the_counters_gpuobs_writes_leave_out_fields_older_dcgm_exporters_refuse():
    """dcgm-exporter on a DCGM before 4.5 exits at start on a field it does not know: the generated
    CSV leaves the recovery action out, while a spec's own list may name it by either DCGM name."""
    from gpuobs.alerts import ALERTS

    needed = {key for alert in ALERTS for signal in alert.needs for key in signal}
    assert catalog.DCGM_45_KEYS <= needed, "a field no alert reads needs no exception"
    written = catalog.gpuobs_dcgm_counters(ALERTS)
    assert not {catalog.DCGM_NAMES[key] for key in catalog.DCGM_45_KEYS} & set(written)
    for name in ("DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION", "DCGM_FI_DEV_GPU_RECOVERY_ACTION"):
        profile = catalog.dcgm_exporter_profile((name,))
        assert profile.serves("recovery_action") and profile.metric("recovery_action") == name
