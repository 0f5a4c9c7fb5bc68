"""Every named fault drives the metrics its generated alert reads past the alert's threshold
(thresholds as in gpuobs/thresholds.py and gpuobs/generators/rules.py)."""

from pathlib import Path

import pytest
from exposition_helpers import find, value

from exporters.exposition import Builder
from exporters.simulator.faults import FAULTS, FaultError
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import HostLayout


def fleet_of(model: str = "A100-SXM4-80GB", gpus: int = 4, **layout) -> Fleet:
    fleet = Fleet([HostLayout("node", model, gpus, 0, **layout), HostLayout("other", model, 2, 0)], seed=11,
                  epoch=1.7e9)
    fleet.advance_to(300)  # settled
    return fleet


def body(fleet: Fleet, host: int = 0) -> bytes:
    builder = Builder()
    fleet.hosts[host].emit(builder)
    return builder.render()


def run(fleet: Fleet, name: str, seconds: float, gpu: int | None = 2, **params):
    before = body(fleet)
    fault = fleet.start_fault(name, "node", gpu, params)
    fleet.advance_to(fleet.t + seconds)
    return before, body(fleet), fault


def hw_flags(text: bytes, gpu: int) -> set[str]:
    return {s.labels["reason"] for s in find(text, "clock_event_active", gpu=gpu) if s.value}


def test_thermal_runaway_passes_the_reported_max_operating_temperature_and_the_85c_fallback():
    fleet = fleet_of()
    _, after, _ = run(fleet, "thermal-runaway", 480)
    assert value(after, "gpu_temp", gpu=2) > max(85, value(after, "gpu_max_op_temp", gpu=2))
    assert "hw_thermal" in hw_flags(after, 2)
    assert value(after, "gpu_temp", gpu=1) < 75, "the other GPUs stay healthy"
    fleet.stop_faults("thermal-runaway")
    fleet.advance_to(fleet.t + 1200)
    assert value(body(fleet), "gpu_temp", gpu=2) < 75, "stopping a fault restores health"


def test_thermal_runaway_on_hopper_drives_the_t_limit_margin_past_zero():
    fleet = fleet_of("H100-SXM5-80GB")
    _, after, _ = run(fleet, "thermal-runaway", 480)
    assert value(after, "gpu_temp_margin", gpu=2) <= 0


def test_thermal_runaway_with_settle_c_holds_the_gpu_in_its_warning_band_whatever_the_load():
    fleet = fleet_of()
    run(fleet, "thermal-runaway", 480, settle_c=82.5)
    readings = []
    for _ in range(60):  # ten simulated minutes of changing load
        fleet.advance_to(fleet.t + 10)
        readings.append(value(body(fleet), "gpu_temp", gpu=2))
    assert 80 <= min(readings) and max(readings) < 85, readings
    assert "hw_thermal" not in hw_flags(body(fleet), 2)


def test_thermal_runaway_from_c_follows_its_line_whatever_the_load():
    """Cooling failing slowly from a hot plateau: the temperature follows from_c + rate a minute,
    within the model's thermal lag, and levels off at settle_c."""
    fleet = fleet_of()
    run(fleet, "thermal-runaway", 60, from_c=72, rate_c_per_min=1.5, settle_c=84)
    readings = []
    for _ in range(8):  # a minute apart: 73.5, 75, ... 84 and held
        fleet.advance_to(fleet.t + 60)
        readings.append(value(body(fleet), "gpu_temp", gpu=2))
    line = [min(84, 72 + 1.5 * minute) for minute in range(2, 10)]
    assert all(abs(r - expected) <= 3 for r, expected in zip(readings, line, strict=True)), (readings, line)
    assert readings == sorted(readings), "it rises steadily, whatever the load does"


def test_fan_failure_stops_the_fan_and_overheats_the_gpu():
    fleet = fleet_of()
    _, after, _ = run(fleet, "fan-failure", 600)
    assert value(after, "fan_speed", gpu=2) == 0
    assert value(after, "gpu_temp", gpu=2) > 85
    assert hw_flags(after, 2) & {"hw_thermal", "sw_thermal"}


def test_ecc_storm_raises_correctable_errors_by_ten_or_more_in_five_minutes():
    fleet = fleet_of()
    before, after, _ = run(fleet, "ecc-storm", 300)
    assert value(after, "ecc_sbe_volatile", gpu=2) - value(before, "ecc_sbe_volatile", gpu=2) >= 10
    assert value(after, "ecc_sbe_aggregate", gpu=2) >= 10
    assert value(after, "ecc_dbe_volatile", gpu=2) == 0


def test_ecc_storm_with_uncorrectable_errors():
    fleet = fleet_of()
    _, after, _ = run(fleet, "ecc-storm", 300, dbe_per_s=0.01)
    assert value(after, "ecc_dbe_volatile", gpu=2) >= 1


def test_xid_79_counts_the_xid_then_the_gpu_falls_off_the_bus():
    fleet = fleet_of()
    fleet.start_fault("xid-79", "node", 2)
    fleet.advance_to(fleet.t + 5)
    early = body(fleet)
    assert value(early, "xid_errors", gpu=2, xid=79) == 1 and value(early, "gpu_up", gpu=2) == 1
    assert value(early, "xid_last", gpu=2) == 79
    fleet.advance_to(fleet.t + 30)
    lost = body(fleet)
    assert value(lost, "gpu_up", gpu=2) == 0
    assert not find(lost, "gpu_temp", gpu=2), "its readings vanish"
    assert value(lost, "xid_errors", gpu=2, xid=79) == 1, "its XID history stays"
    assert len(find(lost, "gpu_temp")) == 3, "the other GPUs are served"
    fleet.stop_faults("xid-79")
    fleet.advance_to(fleet.t + 1)
    assert value(body(fleet), "gpu_up", gpu=2) == 1


def test_xid_48_is_a_double_bit_error_waiting_for_a_row_remap():
    fleet = fleet_of()
    before, after, _ = run(fleet, "xid-48", 10)
    assert value(after, "xid_errors", gpu=2, xid=48) == 1
    assert value(after, "ecc_dbe_volatile", gpu=2) - value(before, "ecc_dbe_volatile", gpu=2) == 1
    assert value(after, "row_remap_pending", gpu=2) == 1


def test_what_xid_48_leaves_waiting_for_a_reset_stays_until_a_gpu_reset():
    """The driver's recovery action and the pending row remap outlast the fault: only a reset
    clears them, and with them the volatile ECC counts; the board's aggregate count stays."""
    fleet = fleet_of()
    _, after, _ = run(fleet, "xid-48", 10)
    assert value(after, "recovery_action", gpu=2) == 1 and value(after, "recovery_action", gpu=1) == 0
    fleet.stop_faults("xid-48")
    fleet.advance_to(fleet.t + 60)
    stopped = body(fleet)
    assert value(stopped, "recovery_action", gpu=2) == 1 and value(stopped, "row_remap_pending", gpu=2) == 1
    _, reset, _ = run(fleet, "gpu-reset", 10)
    assert value(reset, "recovery_action", gpu=2) == 0 and value(reset, "row_remap_pending", gpu=2) == 0
    assert value(reset, "ecc_dbe_volatile", gpu=2) == 0 and value(reset, "ecc_dbe_aggregate", gpu=2) == 1
    assert value(reset, "xid_errors", gpu=2, xid=48) == 1, "the exporter's XID history stays"


def test_an_xid_may_carry_the_recovery_action_the_driver_asks_for():
    fleet = fleet_of()
    _, after, _ = run(fleet, "xid", 10, code=154, recovery_action=2)
    assert value(after, "recovery_action", gpu=2) == 2
    _, plain, _ = run(fleet, "xid", 10, gpu=1, code=13)
    assert value(plain, "recovery_action", gpu=1) == 0, "an application's XID asks for nothing"


def test_any_xid_code():
    fleet = fleet_of()
    _, after, _ = run(fleet, "xid", 10, code=94)
    (last,) = find(after, "xid_last", gpu=2)
    assert last.value == 94 and last.labels["err_msg"] == "Contained ECC error"


def test_an_xid_with_follow_ons_logs_what_the_catalog_says_comes_after_it():
    fleet = fleet_of()
    _, after, _ = run(fleet, "xid", 10, code=13, follow_ons=1)
    assert {s.labels["xid"] for s in find(after, "xid_errors", gpu=2)} == {"13", "43", "45"}
    _, after, _ = run(fleet, "xid", 10, gpu=1, code=999)
    assert value(after, "xid_errors", gpu=1, xid=999) == 1, "a code outside the catalog is served too"


def test_sram_ecc_is_an_uncorrectable_error_without_a_row_to_remap():
    fleet = fleet_of()
    before, after, _ = run(fleet, "sram-ecc", 10)
    assert {s.labels["xid"] for s in find(after, "xid_errors", gpu=2)} == {"48", "172"}
    assert value(after, "ecc_dbe_volatile", gpu=2) - value(before, "ecc_dbe_volatile", gpu=2) == 1
    assert value(after, "row_remap_pending", gpu=2) == 0
    assert value(after, "uncorrectable_remapped_rows", gpu=2) == value(before, "uncorrectable_remapped_rows", gpu=2)


def test_row_remap_failure_sets_the_failure_flag():
    fleet = fleet_of()
    before, after, _ = run(fleet, "row-remap-failure", 10)
    assert value(after, "row_remap_failure", gpu=2) == 1
    assert value(after, "uncorrectable_remapped_rows", gpu=2) == value(before, "uncorrectable_remapped_rows", gpu=2) + 1


@pytest.mark.parametrize(("model", "key"), [("A100-SXM4-80GB", "row_remap_pending"),
                                            ("V100-SXM2-32GB", "retired_pending")])
def test_row_remap_pending_sets_the_flag_the_model_reports(model, key):
    fleet = fleet_of(model)
    _, after, _ = run(fleet, "row-remap-pending", 10)
    assert value(after, key, gpu=2) == 1


def test_power_excursion_draws_more_than_1_125_times_the_enforced_limit():
    fleet = fleet_of()
    _, after, _ = run(fleet, "power-excursion", 30)
    assert value(after, "power_usage", gpu=2) > 1.125 * value(after, "enforced_power_limit", gpu=2)


def test_memory_leak_fills_the_framebuffer_past_90_percent():
    fleet = fleet_of()
    _, after, _ = run(fleet, "memory-leak", 360)
    used, free = value(after, "fb_used", gpu=2), value(after, "fb_free", gpu=2)
    assert used / (used + free) >= 0.9
    fleet.stop_faults("memory-leak")
    fleet.advance_to(fleet.t + 1)
    used, free = value(body(fleet), "fb_used", gpu=2), value(body(fleet), "fb_free", gpu=2)
    assert used / (used + free) < 0.9


def test_memory_leak_on_a_mig_gpu_fills_an_instance():
    fleet = fleet_of(mig_profiles=("3g.40gb", "3g.40gb"))
    _, after, _ = run(fleet, "memory-leak", 360)
    ratios = [s.value / (s.value + value(after, "fb_free", gpu=2, GPU_I_ID=s.labels["GPU_I_ID"]))
              for s in find(after, "fb_used", gpu=2)]
    assert max(ratios) >= 0.9


def test_nvlink_errors_raise_every_nvlink_error_counter():
    fleet = fleet_of()
    before, after, _ = run(fleet, "nvlink-errors", 60)
    for key in ("nvlink_crc_flit_errors", "nvlink_crc_data_errors", "nvlink_replay_errors", "nvlink_recovery_errors"):
        assert value(after, key, gpu=2) - value(before, key, gpu=2) >= 60


def test_pcie_replay_errors_raise_the_replay_counter():
    fleet = fleet_of()
    before, after, _ = run(fleet, "pcie-replay-errors", 60)
    assert value(after, "pcie_replay", gpu=2) > value(before, "pcie_replay", gpu=2)


def test_exporter_hang_marks_the_host_hung_until_stopped():
    fleet = fleet_of()
    fleet.start_fault("exporter-hang", "node", params={"seconds": 5})
    assert fleet.hosts[0].hung and fleet.hosts[0].hang_seconds == 5 and not fleet.hosts[1].hung
    fleet.stop_faults("exporter-hang", "node")
    assert not fleet.hosts[0].hung


def test_collection_stall_marks_the_host_stalled_until_stopped():
    fleet = fleet_of()
    fleet.start_fault("collection-stall", "node")
    assert fleet.hosts[0].stalled and not fleet.hosts[1].stalled
    fleet.stop_faults("collection-stall", "node")
    assert not fleet.hosts[0].stalled


def test_a_fault_without_a_gpu_acts_on_every_gpu_of_the_host_and_a_duration_ends_it():
    fleet = fleet_of()
    fault = fleet.start_fault("power-excursion", "node", duration=60)
    fleet.advance_to(fleet.t + 30)
    during = body(fleet)
    assert all(s.value > 400 for s in find(during, "power_usage"))
    fleet.advance_to(fault.until + 60)
    assert fleet.active_faults() == []
    assert all(s.value < 400 for s in find(body(fleet), "power_usage"))


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("meteor-strike", {}, "unknown fault"),
    ("ecc-storm", {"host": "nope"}, "unknown host"),
    ("ecc-storm", {"host": None}, "host is required"),
    ("ecc-storm", {"gpu": 9}, "has GPUs 0..3"),
    ("ecc-storm", {"params": {"rate": 1}}, "unknown parameters"),
    ("ecc-storm", {"params": {"sbe_per_s": "fast"}}, "must be a number"),
    ("exporter-hang", {"gpu": 1}, "leave gpu out"),
    ("ecc-storm", {"duration": 0}, "duration must be positive"),
])
def test_fault_requests_that_cannot_work_are_refused(name, kwargs, message):
    fleet = fleet_of()
    args = {"host": "node", "gpu": 0, **kwargs}
    with pytest.raises(FaultError, match=message):
        fleet.start_fault(name, args.pop("host"), args.pop("gpu"), args.pop("params", None), args.pop("duration", None))


def test_faults_a_gpu_cannot_show_are_refused():
    with pytest.raises(FaultError, match="has no NVLink"):
        fleet_of("L4").start_fault("nvlink-errors", "node", 0)
    with pytest.raises(FaultError, match="retires pages"):
        fleet_of("V100-SXM2-32GB").start_fault("row-remap-failure", "node", 0)
    with pytest.raises(FaultError, match="MIG"):
        fleet_of(mig_profiles=("7g.80gb",)).start_fault("row-remap-failure", "node")
    fleet = fleet_of()
    fleet.start_fault("ecc-storm", "node", 1)
    with pytest.raises(FaultError, match="already active"):
        fleet.start_fault("ecc-storm", "node")


def test_every_fault_has_a_test():
    source = Path(__file__).read_text()
    untested = [name for name in FAULTS if f'"{name}", ' not in source.split("def test_fault_requests")[0]]
    assert not untested
