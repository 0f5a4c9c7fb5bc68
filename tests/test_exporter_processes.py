"""Per-process series (--process-metrics) against the fake NVML: memory and SM utilization per
process, the cap with its pid="other" bucket and folded counter, MIG instances, PIDs that come and go."""

import pynvml
from exposition_helpers import find, value
from nvml_fake import MIB, FakeGpu, FakeMig, FakeProcess
from nvml_helpers import Exporter

from exporters.nvml_processes import Processes


def _by_pid(body, key, **labels) -> dict:
    return {s.labels["pid"]: s.value for s in find(body, key, **labels)}


def test_each_process_has_its_memory_and_utilization_up_to_the_cap_and_the_rest_are_summed(nvml):
    processes = [FakeProcess(300, 2000, sm=20), FakeProcess(100, 4000, sm=40, name="/usr/bin/python3"),
                 FakeProcess(400, 1000, sm=10), FakeProcess(200, 3000, sm=30)]
    fake = nvml([FakeGpu(0, processes=processes), FakeGpu(1)])
    exporter = Exporter(processes=Processes(cap=2))
    body = exporter.cycle()
    assert _by_pid(body, "process_memory_used", gpu=0) == {"100": 4000 * MIB, "200": 3000 * MIB, "other": 3000 * MIB}
    assert _by_pid(body, "process_sm_util", gpu=0) == {"100": 0.4, "200": 0.3, "other": 0.3}
    (top,) = find(body, "process_memory_used", pid=100)
    assert top.labels["process_name"] == "/usr/bin/python3" and top.labels["UUID"] == fake.gpus[0].uuid
    (other,) = find(body, "process_memory_used", pid="other")
    assert "process_name" not in other.labels
    assert value(body, "process_folded", gpu=0) == 2
    assert value(body, "process_folded", gpu=1) == 0 and not find(body, "process_memory_used", gpu=1)

    fake.gpus[0].processes.append(FakeProcess(500, 500))
    fake.utilization_time += 1_000_000
    body = exporter.cycle()
    assert value(body, "process_folded", gpu=0) == 3, "a process is counted once, as it is folded"
    assert value(body, "process_memory_used", pid="other") == 3500 * MIB
    assert value(body, "process_sm_util", pid="other") == 0.3, "a process without a sample ran no kernel"


def test_a_process_that_ends_takes_its_series_with_it_and_nothing_of_it_is_kept(nvml):
    fake = nvml([FakeGpu(0, processes=[FakeProcess(100, sm=50), FakeProcess(200, sm=50)])])
    exporter = Exporter(processes=Processes(cap=2))
    exporter.cycle()
    fake.gpus[0].processes = [FakeProcess(300, sm=50)]
    fake.utilization_time += 1_000_000
    body = exporter.cycle()
    assert _by_pid(body, "process_memory_used") == {"300": 1000 * MIB}
    cached = [key for key in exporter.source.devices[0].entity._prefixes if isinstance(key, tuple)]
    assert not [key for key in cached if "pid" in dict(key[1])], "no label prefix per PID is kept"


def test_utilization_is_per_sample_since_the_previous_cycle(nvml):
    fake = nvml([FakeGpu(0, processes=[FakeProcess(100, sm=70)])])
    exporter = Exporter(processes=Processes(cap=4))
    assert value(exporter.cycle(), "process_sm_util") == 0.7
    assert value(exporter.cycle(), "process_sm_util") == 0, "NVML has no sample since the last cycle"
    fake.utilization_time += 1_000_000
    assert value(exporter.cycle(), "process_sm_util") == 0.7
    assert exporter.errors_of(0, "process_utilization") == 0


def test_mig_instances_have_their_own_processes_and_nvml_gives_no_utilization_there(nvml):
    processes = [FakeProcess(100, 5000, gi_id=1, sm=50), FakeProcess(200, 1000, gi_id=5),
                 FakeProcess(300, 2000, gi_id=5)]
    nvml([FakeGpu(0, mig=[FakeMig(1, "3g.40gb"), FakeMig(5, "1g.10gb")], processes=processes)])
    exporter = Exporter(processes=Processes(cap=1))
    body = exporter.cycle(2)
    assert _by_pid(body, "process_memory_used", GPU_I_ID=1) == {"100": 5000 * MIB}
    assert _by_pid(body, "process_memory_used", GPU_I_ID=5) == {"300": 2000 * MIB, "other": 1000 * MIB}
    (series,) = find(body, "process_memory_used", pid=300)
    assert series.labels["GPU_I_PROFILE"] == "1g.10gb"
    assert value(body, "process_folded", GPU_I_ID=5) == 1 and value(body, "process_folded", GPU_I_ID=1) == 0
    assert not find(body, "process_sm_util")
    assert exporter.errors_of(0, "process_utilization") == 1, "NotSupported: counted once, not asked again"


def test_what_nvml_does_not_say_of_a_process_is_left_out(nvml):
    """No memory figure (MIG without privileges), no name (the process is not ours to see), a
    graphics process, and a GPU whose process list NVML refuses."""
    processes = [FakeProcess(100, None, sm=10), FakeProcess(200, 700, name=None), FakeProcess(300, 300, graphics=True)]
    refused = {"nvmlDeviceGetComputeRunningProcesses_v3": pynvml.NVML_ERROR_UNKNOWN}
    nvml([FakeGpu(0, processes=processes), FakeGpu(1, processes=processes[:1], fail=refused)])
    exporter = Exporter(processes=Processes(cap=4))
    body = exporter.cycle()
    assert _by_pid(body, "process_memory_used", gpu=0) == {"200": 700 * MIB, "300": 300 * MIB}
    assert _by_pid(body, "process_sm_util", gpu=0) == {"100": 0.1, "200": 0, "300": 0}
    (nameless,) = find(body, "process_memory_used", pid=200)
    assert "process_name" not in nameless.labels
    assert not find(body, "process_memory_used", gpu=1) and not find(body, "process_folded", gpu=1)
    assert value(body, "gpu_temp", gpu=1) == 45 and exporter.errors_of(1, "processes") == 1


def test_processes_are_not_read_unless_asked_for(nvml, monkeypatch):
    nvml([FakeGpu(0, processes=[FakeProcess(100)])])
    monkeypatch.setattr(pynvml, "nvmlDeviceGetComputeRunningProcesses_v3", None)
    exporter = Exporter()
    body = exporter.cycle()
    assert not find(body, "process_memory_used") and not find(body, "process_folded")
    assert exporter.errors_of(0, "processes") == 0, "never asked"
