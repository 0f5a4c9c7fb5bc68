"""The failure mix benchmarks/alert_truth.py replays (benchmarks/failure_mix.py) is consistent with its
source and with the catalogs: the benchmark itself runs real servers and is not part of the suite."""

import importlib.util
import sys

import pytest

from conftest import ROOT
from exporters.simulator.faults import FAULTS, resolve_params
from gpuobs.alerts import BY_NAME
from gpuobs.xid_catalog import CATALOG


@pytest.fixture(scope="module")
def mix():
    spec = importlib.util.spec_from_file_location("failure_mix", ROOT / "benchmarks" / "failure_mix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("failure_mix", module)
    spec.loader.exec_module(module)
    return module


def test_counts_add_up_to_the_papers_interruptions(mix):
    assert sum(c.count for c in mix.CLASSES) == mix.TOTAL == 419
    assert len({c.name for c in mix.CLASSES}) == len(mix.CLASSES)


def test_printed_percentages_match_the_counts_except_where_the_paper_disagrees_with_itself(mix):
    for cls in mix.CLASSES:
        share = round(100 * cls.count / mix.TOTAL, 1)
        assert (share == cls.percent) != (cls.name in mix.PRINTED_AS_IS), (cls.name, share, cls.percent)
    gpu = ("Faulty GPU", "GPU HBM3", "GPU SRAM", "GPU system", "Silent data", "GPU thermal")
    assert round(sum(c.percent for c in mix.CLASSES if c.name.startswith(gpu)), 1) == 58.7, "the paper's GPU total"


def test_every_expected_alert_exists_or_the_class_shows_no_gpu_level_signal(mix):
    for cls in mix.CLASSES:
        if not cls.variants:
            continue
        for variant in cls.variants:
            assert set(variant.expects) <= set(BY_NAME), (cls.name, variant.name)
            for name, params in variant.faults:
                resolve_params(FAULTS[name], params)
                if name == "xid":
                    assert params["code"] in CATALOG
            assert not (variant.host_level and variant.at_start)
            assert {name for name, _ in variant.durations} <= {name for name, _ in variant.faults}
    silent = {c.name for c in mix.CLASSES if not c.variants}
    assert {"Network switch/cable", "Silent data corruption", "NCCL watchdog timeouts"} <= silent


def test_xid_expectations_follow_the_alert_catalog(mix):
    assert mix.xid_alerts(79) == ("GPUXidQuarantine",)
    assert mix.xid_alerts(46) == ("GPUXidReset",)
    assert mix.xid_alerts(13) == ("GPUXidApplication",), "application-level: the owning team's info"
    assert mix.xid_alerts(63) == (), "IGNORE in the catalog: no alert"
    assert mix.xid_alerts(999) == ("GPUXidUnknown",)


def test_allocation_is_proportional_with_a_floor(mix):
    given = mix.allocate(64, 3)
    assert set(given) == {c.name for c in mix.CLASSES if c.variants}
    assert min(given.values()) == 3
    assert given["Faulty GPU (NVLink included)"] > given["GPU HBM3 memory"] > given["GPU SRAM memory"]
    assert sum(mix.allocate(100, 0).values()) == 100
