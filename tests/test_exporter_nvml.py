"""The NVML exporter against a fake NVML (the real pynvml, functions replaced): every field in
dcgm's units, per-field and per-GPU failures, lost GPUs, MIG, XID events, GPM."""

import time

import pynvml
import pytest
from exposition_helpers import DCGM, find, names, samples, value
from nvml_fake import FakeGpu, FakeMig, FakeProcess
from nvml_helpers import Exporter

from exporters.nvml_processes import Processes
from gpuobs import catalog


def test_every_field_is_read_in_dcgm_units(nvml):
    nvml([FakeGpu(0, power_mw=250_500, limit_mw=400_999, enforced_mw=350_000, remapped=(2, 1, 0, 1),
                  recovery_action=pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET,
                  nvlink_errors={38: 5, 45: 6, 52: 7, 59: 8}, fan=55, vgpu_licensed=1)])
    body = Exporter().cycle()
    gpu = {"gpu": 0, "UUID": "GPU-00000000-fake-0000-0000-000000000000", "hostname": "node-1",
           "modelName": "NVIDIA A100-SXM4-80GB", "device": "nvidia0", "pci_bus_id": "00000000:10:00.0"}
    expected = {
        "gpu_up": 1, "sm_clock": 1410, "mem_clock": 1593, "gpu_temp": 45, "memory_temp": 50, "gpu_max_op_temp": 85,
        "mem_max_op_temp": 95, "power_usage": 250.5, "power_limit": 400, "enforced_power_limit": 350,
        "total_energy": 1_000_000, "pcie_replay": 0, "pcie_tx_bytes": 1000 * 1024, "pcie_rx_bytes": 2000 * 1024,
        "gpu_util": 70, "mem_copy_util": 30, "enc_util": 0, "dec_util": 0, "clock_event_reasons": 0,
        "ecc_sbe_volatile": 0, "ecc_sbe_aggregate": 3, "ecc_dbe_volatile": 0, "ecc_dbe_aggregate": 0,
        "correctable_remapped_rows": 2, "uncorrectable_remapped_rows": 1, "row_remap_pending": 0,
        "row_remap_failure": 1, "recovery_action": 4, "nvlink_crc_flit_errors": 5, "nvlink_crc_data_errors": 6,
        "nvlink_replay_errors": 7, "nvlink_recovery_errors": 8, "nvlink_bandwidth": 0, "vgpu_license_status": 1,
        "pstate": 0, "fan_speed": 55, "fb_used": 20000, "fb_free": 81920 - 20000 - 500, "fb_total": 81920,
        "fb_reserved": 500,
    }
    for key, number in expected.items():
        (sample,) = find(body, key)
        assert sample.value == number, key
        assert sample.labels == {k: str(v) for k, v in gpu.items()}, key
    (info,) = find(body, "gpu_info")
    assert info.labels["driver_version"] == "550.54.15" and info.labels["serial"] == "1320000000000"
    assert not find(body, "gpu_temp_margin"), "A100 drivers report no T.Limit margin: absent, not 0"


def test_a_field_nvml_refuses_on_one_gpu_is_left_out_and_counted(nvml):
    fake = nvml([FakeGpu(0), FakeGpu(1, fail={"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_UNKNOWN})])
    exporter = Exporter()
    body = exporter.cycle(2)
    assert value(body, "power_usage", gpu=0) == 250.0
    assert not find(body, "power_usage", gpu=1)
    assert value(body, "gpu_temp", gpu=1) == 45 and value(body, "gpu_up", gpu=1) == 1
    assert value(body, "exporter_collection_errors", gpu=1, field="power_usage") == 2, "transient: every cycle"
    del fake.gpus[1].fail["nvmlDeviceGetPowerUsage"]
    assert value(exporter.cycle(), "power_usage", gpu=1) == 250.0, "served again once NVML answers"


def test_not_supported_is_counted_once_and_not_asked_again(nvml, monkeypatch):
    nvml([FakeGpu(0, fan=None)])
    calls = []
    real = pynvml.nvmlDeviceGetFanSpeed
    monkeypatch.setattr(pynvml, "nvmlDeviceGetFanSpeed", lambda h: calls.append(h) or real(h))
    exporter = Exporter()
    body = exporter.cycle(3)
    assert not find(body, "fan_speed")
    assert value(body, "exporter_collection_errors", gpu=0, field="fan_speed") == 1
    assert len(calls) == 1


def test_a_gpu_lost_mid_run_is_served_as_down_and_the_others_are_untouched(nvml):
    fake = nvml([FakeGpu(0, gpm=True), FakeGpu(1, gpm=True), FakeGpu(2)])
    exporter = Exporter()
    before = exporter.cycle(2)
    exporter.source.xids.record(1, 79, 1000.0)  # what the event thread records as the GPU falls off
    fake.gpus[1].lost = True
    after = exporter.cycle()
    assert value(after, "gpu_up", gpu=1) == 0
    per_gpu = [s for s in samples(after) if s.labels.get("UUID")]
    lost = {s.name for s in per_gpu if s.labels["gpu"] == "1" and s.name != DCGM.metric("gpu_up")}
    assert lost == {DCGM.metric("xid_errors"), DCGM.metric("xid_last_seen"), DCGM.metric("xid_last")}, \
        "only the exporter's own XID record stays on a lost GPU"
    (up,) = find(after, "gpu_up", gpu=1)
    assert up.labels["UUID"] == "GPU-00000001-fake-0000-0000-000000000000", "still identifiable"
    for gpu in (0, 2):
        assert {s.name for s in per_gpu if s.labels["gpu"] == str(gpu)} == \
               {s.name for s in samples(before) if s.labels.get("UUID") and s.labels["gpu"] == str(gpu)}
    assert value(after, "exporter_collection_errors", gpu=1, field="gpu_lost") == 1
    assert {gpu for gpu, _ in fake.live_samples.values()} == {0}, "the lost GPU's GPM samples are freed"
    assert value(after, "exporter_last_success") > 0


def test_a_gpu_nvml_cannot_open_at_start_is_served_as_down(nvml):
    nvml([FakeGpu(0), FakeGpu(1, fail={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_GPU_IS_LOST})])
    exporter = Exporter()
    body = exporter.cycle()
    (down,) = find(body, "gpu_up", gpu=1)
    assert down.value == 0 and down.labels == {"gpu": "1", "device": "nvidia1", "hostname": "node-1"}
    assert value(body, "gpu_up", gpu=0) == 1
    assert value(body, "exporter_collection_errors", gpu=1, field="identity") == 1


def test_mig_instances_carry_profile_and_instance_labels(nvml):
    fake = nvml([FakeGpu(0, gpm=True, mig=[FakeMig(1, "3g.40gb", used_mib=1000), FakeMig(5, "1g.10gb", used_mib=500)]),
          FakeGpu(1)])
    exporter = Exporter()
    body = exporter.cycle(2)
    used = {(s.labels["GPU_I_PROFILE"], s.labels["GPU_I_ID"]): s.value for s in find(body, "fb_used", gpu=0)}
    assert used == {("3g.40gb", "1"): 1000, ("1g.10gb", "5"): 500}
    assert {s.labels["UUID"] for s in find(body, "fb_used", gpu=0)} == {"GPU-00000000-fake-0000-0000-000000000000"}
    assert value(body, "fb_total", gpu=0, GPU_I_ID=5) == 9728
    gr = {s.labels["GPU_I_ID"]: s.value for s in find(body, "gr_engine_active", gpu=0)}
    assert gr == {"1": 0.25, "5": 0.25}, "per instance, GPM percent as a 0..1 ratio"
    # GPU-level series on a MIG GPU carry no instance labels, and are not repeated per instance.
    (temp,) = find(body, "gpu_temp", gpu=0)
    assert "GPU_I_ID" not in temp.labels
    assert not find(body, "gpu_util", gpu=0), "NVML has no whole-GPU utilization under MIG"
    assert not find(body, "row_remap_failure", gpu=0)
    assert value(body, "exporter_collection_errors", gpu=0, field="utilization") == 1
    assert "GPU_I_ID" not in find(body, "fb_used", gpu=1)[0].labels
    fake.gpus[0].mig.pop()  # reconfigured: instance 5 is gone
    body = exporter.cycle()
    assert {s.labels["GPU_I_ID"] for s in find(body, "fb_used", gpu=0)} == {"1"}
    assert {v for v in fake.live_samples.values() if v[0] == 0} == {(0, 1), (0, None)}, "its GPM sample freed"


def test_xid_events_become_counters_per_code(nvml):
    fake = nvml([FakeGpu(0), FakeGpu(1)])
    exporter = Exporter()
    exporter.source.watcher.start()
    try:
        started = time.time()
        for gpu, code in ((0, 79), (0, 79), (1, 48), (0, 13)):
            fake.xid(gpu, code)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not fake.events.empty():
            time.sleep(0.01)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(find(exporter.cycle(), "xid_errors")) < 3:
            time.sleep(0.01)
        body = exporter.cycle()
    finally:
        exporter.source.watcher.stop()
    assert value(body, "xid_errors", gpu=0, xid=79) == 2, "a repeat is counted, not hidden"
    assert value(body, "xid_errors", gpu=0, xid=13) == 1
    assert value(body, "xid_errors", gpu=1, xid=48) == 1
    assert started - 0.001 <= value(body, "xid_last_seen", gpu=0, xid=79) <= time.time()
    (last,) = find(body, "xid_last", gpu=0)
    assert last.value == 13 and last.labels["err_code"] == "13"
    assert exporter.source.watcher.registered == {0, 1}


def test_throttle_reasons_become_flags_and_keep_the_bitmask(nvml):
    hw = catalog.CLOCK_EVENT_BITS["hw_slowdown"] | catalog.CLOCK_EVENT_BITS["hw_thermal"]
    nvml([FakeGpu(0, reasons=hw)])
    body = Exporter().cycle()
    assert value(body, "clock_event_reasons") == hw
    active = {s.labels["reason"] for s in find(body, "clock_event_active") if s.value == 1}
    assert active == {"hw_slowdown", "hw_thermal"}
    assert len(find(body, "clock_event_active")) == len(catalog.CLOCK_EVENT_BITS)


def test_hopper_gpm_serves_prof_ratios_and_pcie_rates_and_the_t_limit_margin(nvml):
    nvml([FakeGpu(0, name="NVIDIA H100 80GB HBM3", gpm=True, margin=30, max_op=None)])
    exporter = Exporter()
    first = exporter.cycle()
    assert not find(first, "gr_engine_active"), "GPM needs two samples"
    body = exporter.cycle()
    assert value(body, "gr_engine_active") == 0.5 and value(body, "tensor_active") == 0.25
    assert value(body, "dram_active") == 0.4
    assert value(body, "pcie_tx_bytes") == 100 * 1048576, "GPM MiB/s in bytes/s, as DCGM"
    assert value(body, "gpu_temp_margin") == 30
    assert not find(body, "gpu_max_op_temp")


def test_nvlink_bandwidth_is_dcgms_rate_of_the_data_counters(nvml):
    fake = nvml([FakeGpu(0)])
    exporter = Exporter()
    now = [100.0]
    exporter.source.reader.monotonic = lambda: now[0]
    assert value(exporter.cycle(), "nvlink_bandwidth") == 0
    now[0] += 10
    fake.gpus[0].nvlink_data_kib += 500_000  # RX and TX each
    assert value(exporter.cycle(), "nvlink_bandwidth") == 100  # 1e6 KiB / 10 s / 1000


def test_the_exporter_serves_every_catalog_metric_it_can_read(nvml):
    """Names served across a varied fleet == the catalog's GPU, instance and exporter metrics."""
    fake = nvml([FakeGpu(0, fan=60, vgpu_licensed=0, processes=[FakeProcess(100, sm=50), FakeProcess(101)]),
                 FakeGpu(1, name="NVIDIA H100 80GB HBM3", gpm=True, margin=20, max_op=None),
                 FakeGpu(2, name="Tesla V100-SXM2-32GB", retired={0: 1, 1: 0, "pending": 0}),
                 FakeGpu(3, gpm=True, mig=[FakeMig(1, "7g.80gb")])])
    exporter = Exporter(processes=Processes(cap=1))
    exporter.source.xids.record(0, 31, 1.0)
    exporter.cycle()
    body = exporter.cycle()
    fake.gpus[1].lost = True
    served = names(body) | names(exporter.cycle())
    wanted = {DCGM.metric(m.key) for m in catalog.METRICS
              if m.level in (catalog.GPU, catalog.INSTANCE, catalog.EXPORTER) and catalog.GPUOBS_PROFILE.serves(m.key)}
    assert served == wanted


def _errors(body, gpu, field) -> float:
    found = find(body, "exporter_collection_errors", gpu=gpu, field=field)
    return found[0].value if found else 0


def test_any_exception_in_one_field_of_one_gpu_costs_that_field_only(nvml, monkeypatch):
    fake = nvml([FakeGpu(0), FakeGpu(1, fail={"nvmlDeviceGetPowerUsage": TypeError("bad argument"),
                                               "nvmlDeviceGetPcieReplayCounter": RuntimeError("boom")})])
    real_clock, real_energy = pynvml.nvmlDeviceGetClockInfo, pynvml.nvmlDeviceGetTotalEnergyConsumption
    # A None where NVML owes a number, once straight into the sample and once into arithmetic.
    monkeypatch.setattr(pynvml, "nvmlDeviceGetClockInfo",
                        lambda handle, type: None if fake.gpu_of(handle).index == 1 else real_clock(handle, type))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption",
                        lambda handle: None if fake.gpu_of(handle).index == 1 else real_energy(handle))
    body = Exporter().cycle(2)
    assert b"None" not in body
    for key in ("power_usage", "pcie_replay", "sm_clock", "mem_clock", "total_energy"):
        assert find(body, key, gpu=0), key
        assert not find(body, key, gpu=1), key
    assert value(body, "gpu_up", gpu=1) == 1 and value(body, "gpu_temp", gpu=1) == 45
    assert value(body, "fb_used", gpu=1) == 20000
    for field in ("power_usage", "pcie_replay", "sm_clock", "mem_clock", "total_energy"):
        assert _errors(body, 1, field) == 2, f"{field}: a failure of this cycle, asked again next cycle"
        assert _errors(body, 0, field) == 0


def test_a_function_missing_from_an_older_nvidia_ml_py_costs_its_field_once(nvml, monkeypatch):
    nvml([FakeGpu(0, margin=20), FakeGpu(1, margin=20)])
    monkeypatch.delattr(pynvml, "nvmlDeviceGetMarginTemperature")
    monkeypatch.delattr(pynvml, "nvmlDeviceGetTemperatureV")
    monkeypatch.delattr(pynvml, "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION")  # an older nvidia-ml-py
    body = Exporter().cycle(3)
    for gpu in (0, 1):
        assert value(body, "gpu_up", gpu=gpu) == 1
        assert value(body, "gpu_temp", gpu=gpu) == 45, "nvmlDeviceGetTemperature instead"
        assert not find(body, "gpu_temp_margin", gpu=gpu) and not find(body, "recovery_action", gpu=gpu)
        assert _errors(body, gpu, "gpu_temp_margin") == 1, "permanent: counted once"
        assert _errors(body, gpu, "recovery_action") == 1, "permanent: counted once"
        assert _errors(body, gpu, "gpu_temp") == 0


@pytest.mark.parametrize("code", [pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, pynvml.NVML_ERROR_NOT_SUPPORTED,
                                  pynvml.NVML_ERROR_NO_PERMISSION])
def test_permanent_refusals_are_counted_once_and_not_asked_again(nvml, monkeypatch, code):
    nvml([FakeGpu(0, fail={"nvmlDeviceGetTotalEnergyConsumption": code})])
    calls = []
    real = pynvml.nvmlDeviceGetTotalEnergyConsumption
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", lambda h: calls.append(h) or real(h))
    body = Exporter().cycle(3)
    assert not find(body, "total_energy") and value(body, "power_usage") == 250.0
    assert _errors(body, 0, "total_energy") == 1 and len(calls) == 1


def test_a_field_value_entry_nvml_does_not_support_is_counted_once(nvml):
    """L4, L40S, A10: no memory temperature, no NVLink; the field-values call answers per entry.
    A driver older than the recovery action field answers the same way for it."""
    nvml([FakeGpu(0, name="NVIDIA L4", memory_temp=None, nvlink_errors={}, nvlink_data_kib=None,
                  recovery_action=None)])
    body = Exporter().cycle(3)
    assert not find(body, "memory_temp") and not find(body, "nvlink_crc_flit_errors")
    assert not find(body, "recovery_action")
    for field in ("memory_temp", "nvlink_errors", "nvlink_bandwidth", "recovery_action"):
        assert _errors(body, 0, field) == 1, field
    assert value(body, "gpu_temp") == 45


def test_nvlink_counters_nvml_fills_in_part_are_served_in_part(nvml):
    nvml([FakeGpu(0, nvlink_errors={38: 5, 52: 7})])
    body = Exporter().cycle(2)
    assert value(body, "nvlink_crc_flit_errors") == 5 and value(body, "nvlink_replay_errors") == 7
    assert not find(body, "nvlink_crc_data_errors")
    assert _errors(body, 0, "nvlink_errors") == 0


@pytest.mark.parametrize("missing", ["driver", "nvidia-ml-py"])
def test_clock_events_fall_back_to_the_throttle_reasons_call(nvml, monkeypatch, missing):
    hw = catalog.CLOCK_EVENT_BITS["hw_slowdown"]
    fake = nvml([FakeGpu(0, reasons=hw)])
    if missing == "driver":
        fake.gpus[0].fail["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    else:
        monkeypatch.delattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons")
    body = Exporter().cycle(2)
    assert value(body, "clock_event_reasons") == hw
    assert _errors(body, 0, "clock_event_reasons") == 0


@pytest.mark.parametrize("failure", [pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN), RuntimeError("driver bug"),
                                     pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)])
def test_gpm_support_failing_on_one_gpu_does_not_stop_the_exporter(nvml, failure):
    nvml([FakeGpu(0, gpm=True), FakeGpu(1, gpm=True, fail={"nvmlGpmQueryDeviceSupport": failure})])
    exporter = Exporter()
    body = exporter.cycle(2)
    assert value(body, "gpu_up", gpu=1) == 1 and value(body, "gpu_temp", gpu=1) == 45
    assert value(body, "pcie_tx_bytes", gpu=1) == 1000 * 1024, "NVML's PCIe throughput instead of GPM"
    assert value(body, "gr_engine_active", gpu=0) == 0.5
    assert _errors(body, 1, "gpm_support") == (1 if pynvml.NVMLError_NoPermission is type(failure) else 2)


def test_mig_enumeration_failing_in_odd_ways_costs_the_instances_only(nvml, monkeypatch):
    fake = nvml([FakeGpu(0, mig=[FakeMig(1, "3g.40gb")]), FakeGpu(1, mig=[FakeMig(1, "3g.40gb")])])
    fake.gpus[1].fail["nvmlDeviceGetAttributes_v2"] = ValueError("odd")
    body = Exporter().cycle(2)
    assert value(body, "fb_used", gpu=0, GPU_I_ID=1) == 1000
    assert not [s for s in find(body, "fb_used", gpu=1) if "GPU_I_ID" in s.labels]
    assert value(body, "gpu_up", gpu=1) == 1 and value(body, "gpu_temp", gpu=1) == 45
    assert _errors(body, 1, "mig") == 2


def test_a_bug_escaping_the_reader_costs_one_gpu(nvml, monkeypatch):
    nvml([FakeGpu(0), FakeGpu(1)])
    exporter = Exporter()
    real = exporter.source.reader.read
    monkeypatch.setattr(exporter.source.reader, "read",
                        lambda dev: (_ for _ in ()).throw(KeyError("bug")) if dev.index == 1 else real(dev))
    body = exporter.cycle()
    assert value(body, "gpu_up", gpu=0) == 1 and value(body, "gpu_temp", gpu=0) == 45
    assert value(body, "gpu_up", gpu=1) == 0
    assert _errors(body, 1, "read") == 1
    assert value(body, "exporter_last_success") > 0


def test_identity_failing_in_an_odd_way_serves_the_gpu_as_down(nvml):
    nvml([FakeGpu(0), FakeGpu(1, fail={"nvmlDeviceGetPciInfo": UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")})])
    body = Exporter().cycle()
    assert value(body, "gpu_up", gpu=0) == 1 and value(body, "gpu_up", gpu=1) == 0
    assert _errors(body, 1, "identity") == 1


def test_an_xid_event_that_makes_no_sense_costs_that_event_only(nvml, monkeypatch):
    fake = nvml([FakeGpu(0), FakeGpu(1)])
    real = pynvml.nvmlDeviceGetIndex
    monkeypatch.setattr(pynvml, "nvmlDeviceGetIndex",
                        lambda h: (_ for _ in ()).throw(TypeError("odd")) if real(h) == 1 else real(h))
    exporter = Exporter()
    exporter.source.watcher.start()
    try:
        fake.xid(1, 13)
        fake.xid(0, 31)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not find(exporter.cycle(), "xid_errors"):
            time.sleep(0.01)
        body = exporter.cycle()
    finally:
        exporter.source.watcher.stop()
    assert value(body, "xid_errors", gpu=0, xid=31) == 1
    assert _errors(body, "", "xid_events") == 1


@pytest.mark.parametrize(("privileged", "table", "expected"), [
    (True, True, {"1": "1g.10gb+me", "3": "1g.10gb", "5": "2g.20gb"}),  # the instance's own profile id
    (False, True, {"1": "1g.10gb+me", "3": "1g.10gb", "5": "2g.20gb"}),  # matched on slices, memory, engines
    (True, False, {"1": "1g.10gb", "3": "1g.10gb", "5": "2g.20gb"}),  # DCGM's computation from memory
])
def test_mig_profile_names_come_from_nvml(nvml, privileged, table, expected):
    fail = {}
    if not privileged:
        fail["nvmlDeviceGetGpuInstanceById"] = pynvml.NVML_ERROR_NO_PERMISSION
    if not table:
        fail["nvmlDeviceGetGpuInstanceProfileInfo"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    nvml([FakeGpu(0, mig=[FakeMig(1, "1g.10gb+me"), FakeMig(3, "1g.10gb"), FakeMig(5, "2g.20gb")], fail=fail)])
    exporter = Exporter()
    for _ in range(2):
        body = exporter.cycle()
        assert {s.labels["GPU_I_ID"]: s.labels["GPU_I_PROFILE"] for s in find(body, "fb_total")} == expected
    assert _errors(body, 0, "mig") == 0, "a fallback is no error"
