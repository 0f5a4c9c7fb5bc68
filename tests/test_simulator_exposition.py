"""Both programs' output: what promtool says of it, that it parses, and that it is the catalog,
the whole catalog (for what each program can produce) and nothing but the catalog."""

import re
import shutil
import subprocess

import pynvml
import pytest
from exposition_helpers import DCGM, dcgm_compatibility_findings, names, samples
from nvml_fake import FakeGpu, FakeMig, FakeNvml

from exporters.collector import Collector, ErrorCounts
from exporters.nvml_source import NvmlSource
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import HostLayout
from exporters.simulator.runtime import Endpoint
from gpuobs import catalog

SERVED_LEVELS = (catalog.GPU, catalog.INSTANCE, catalog.EXPORTER)
# The simulator's reads never fail, so it has no read errors to count, and it runs no processes.
SIMULATOR_NEVER_SERVES = {"exporter_collection_errors", "process_memory_used", "process_sm_util", "process_folded"}


def simulator_output() -> bytes:
    fleet = Fleet([HostLayout("a100", "A100-SXM4-80GB", 3, 0, mig_profiles=("3g.40gb", "4g.40gb"), mig_gpus=(2,)),
                   HostLayout("h100", "H100-SXM5-80GB", 2, 0), HostLayout("v100", "V100-SXM2-32GB", 2, 0)],
                  seed=2, epoch=1.7e9)
    fleet.advance_to(60)
    fleet.start_fault("xid", "a100", 0, {"code": 31})
    fleet.start_fault("xid-79", "h100", 1, {"lost_after_s": 0})
    fleet.advance_to(70)
    endpoint = Endpoint(fleet.hosts, 0)
    endpoint.render(1.7e9)
    return endpoint.snapshot.body


def nvml_output(monkeypatch) -> bytes:
    fake = FakeNvml([FakeGpu(0, fan=40, vgpu_licensed=1, fail={"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_UNKNOWN}),
                     FakeGpu(1, name="NVIDIA H100 80GB HBM3", gpm=True, margin=25, max_op=None),
                     FakeGpu(2, gpm=True, mig=[FakeMig(1, "3g.40gb")]),
                     FakeGpu(3, name="Tesla V100-SXM2-32GB", retired={0: 2, 1: 1, "pending": 1})]).install(monkeypatch)
    pynvml.nvmlInit()
    errors = ErrorCounts()
    source = NvmlSource("node", errors)
    source.xids.record(0, 48, 1.7e9)
    collector = Collector(source.collect, 60, "nvml", errors=errors)
    collector.collect_once()
    fake.gpus[3].lost = True
    return collector.collect_once().body


@pytest.fixture(params=["simulator", "nvml"])
def output(request, monkeypatch) -> bytes:
    return simulator_output() if request.param == "simulator" else nvml_output(monkeypatch)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not on PATH")
def test_promtool_finds_nothing_but_dcgm_exporters_own_naming(output):
    result = subprocess.run(["promtool", "check", "metrics"], input=output, capture_output=True, timeout=60)
    findings = {line.strip() for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()}
    assert findings - dcgm_compatibility_findings(output) == set()
    ours = {f for f in findings if f.startswith("gpuobs_") and "camelCase" not in f}
    assert ours == set(), "our own metrics are lint-clean"


def test_every_line_parses_and_every_family_has_help_and_type(output):
    text = output.decode()
    assert samples(output)
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    types = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert helps == types and len(helps) == len(set(helps))
    for line in text.splitlines():
        assert line.startswith("#") or line.split("{")[0].split(" ")[0] in helps


def test_the_simulator_serves_exactly_the_catalog():
    served = names(simulator_output())
    wanted = {DCGM.metric(m.key) for m in catalog.METRICS if m.level in SERVED_LEVELS
              and catalog.GPUOBS_PROFILE.serves(m.key) and m.key not in SIMULATOR_NEVER_SERVES}
    assert served == wanted


def test_both_programs_label_the_same_metric_the_same_way(monkeypatch):
    def label_sets(body):
        sets: dict = {}
        for s in samples(body):
            sets.setdefault(s.name, set()).add(frozenset(s.labels))
        return sets

    simulator, nvml = label_sets(simulator_output()), label_sets(nvml_output(monkeypatch))
    for name in simulator.keys() & nvml.keys():
        if name == DCGM.metric("exporter_collection_errors"):
            continue
        assert simulator[name] == nvml[name], name
