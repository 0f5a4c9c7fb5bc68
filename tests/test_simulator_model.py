"""The simulator's physics: deterministic, healthy by default, counters that only go up."""

import pytest
from exposition_helpers import find, samples, value

from exporters.exposition import Builder
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import HostLayout, from_flags
from exporters.simulator.runtime import SimClock
from gpuobs import catalog
from gpuobs.gpus import GPU_MODELS

HW = {"hw_slowdown", "hw_thermal", "hw_power_brake"}
FB_USED, FB_FREE = catalog.DCGM_NAMES["fb_used"], catalog.DCGM_NAMES["fb_free"]


def render(fleet: Fleet, host: int = 0) -> bytes:
    builder = Builder()
    fleet.hosts[host].emit(builder)
    return builder.render()


def mixed_fleet(seed: int = 7) -> Fleet:
    return Fleet([HostLayout("a", "A100-SXM4-80GB", 4, 0, mig_profiles=("3g.40gb", "4g.40gb"), mig_gpus=(1,)),
                  HostLayout("h", "H100-SXM5-80GB", 2, 0), HostLayout("v", "V100-SXM2-32GB", 2, 0)],
                 seed=seed, epoch=1.7e9)


def test_same_seed_and_fault_timings_give_the_same_values_however_time_is_stepped():
    one, other = mixed_fleet(), mixed_fleet()
    for fleet in (one, other):
        fleet.advance_to(120)
        fleet.start_fault("ecc-storm", "a", 0)
        fleet.start_fault("thermal-runaway", "h", 1)
    for t in range(121, 601):
        one.advance_to(t)  # one simulated second at a time
    other.advance_to(600)  # all at once
    for host in range(3):
        assert render(one, host) == render(other, host)
    different = mixed_fleet(seed=8)
    different.advance_to(600)
    assert render(different) != render(one)


@pytest.mark.parametrize("model", sorted(GPU_MODELS))
def test_a_healthy_gpu_stays_clear_of_every_alert_threshold(model):
    gpu = GPU_MODELS[model]
    fleet = Fleet(from_flags(1, 4, model, 0), seed=3)
    for minute in range(1, 91):
        fleet.advance_to(minute * 60)
        for sim in fleet.hosts[0].gpus:
            assert sim.temp < 75, f"{model} at {sim.temp:.1f} C"
            assert sim.power < 0.9 * gpu.power_limit_watts
            assert sim.mask & 0x0C8 == 0, "no HW slowdown, HW thermal or power brake"
    body = render(fleet)
    for sample in find(body, "fb_used"):
        free = value(body, "fb_free", gpu=sample.labels["gpu"])
        assert sample.value / (sample.value + free) < 0.9
    for key in ("ecc_sbe_volatile", "ecc_dbe_volatile", "pcie_replay", "nvlink_crc_flit_errors",
                "row_remap_failure", "row_remap_pending", "retired_pending", "uncorrectable_remapped_rows"):
        assert all(s.value == 0 for s in find(body, key)), key
    assert not find(body, "xid_errors")
    assert all(s.value == 1 for s in find(body, "gpu_up"))
    if gpu.reports_temp_margin:
        assert min(s.value for s in find(body, "gpu_temp_margin")) >= 15
        assert not find(body, "gpu_max_op_temp"), "T.Limit GPUs report no absolute max operating temperature"
    else:
        assert {s.value for s in find(body, "gpu_max_op_temp")} == {gpu.gpu_temp_critical}
    active = {s.labels["reason"] for s in find(body, "clock_event_active") if s.value}
    assert not active & HW


def test_counters_only_go_up():
    fleet = mixed_fleet()
    fleet.start_fault("ecc-storm", "a", 0, {"dbe_per_s": 0.05})
    fleet.start_fault("nvlink-errors", "h", 0)
    counters = {m.key for m in catalog.METRICS if m.type == catalog.COUNTER} - {"nvlink_bandwidth"}
    last: dict = {}
    for t in range(30, 900, 30):
        fleet.advance_to(t)
        if t == 450:
            fleet.stop_faults()
        for host in range(3):
            for sample in samples(render(fleet, host)):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if any(sample.name == catalog.GPUOBS_PROFILE.metric(k) for k in counters):
                    assert sample.value >= last.get(key, 0), sample
                    last[key] = sample.value
    energy = [v for k, v in last.items() if k[0] == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert len(energy) == 8 and all(v > 0 for v in energy)


def test_mig_gpus_serve_instances_and_no_whole_gpu_utilization():
    fleet = mixed_fleet()
    fleet.advance_to(60)
    body = render(fleet)
    instances = {(s.labels["GPU_I_PROFILE"], s.labels["GPU_I_ID"]) for s in find(body, "fb_used", gpu=1)}
    assert instances == {("3g.40gb", "1"), ("4g.40gb", "2")}
    assert value(body, "fb_total", gpu=1, GPU_I_ID=1) == 40960
    assert not find(body, "gpu_util", gpu=1) and not find(body, "row_remap_failure", gpu=1)
    assert len(find(body, "gr_engine_active", gpu=1)) == 2
    (temp,) = find(body, "gpu_temp", gpu=1)
    assert "GPU_I_ID" not in temp.labels
    assert all("GPU_I_ID" not in s.labels for s in find(body, "fb_used", gpu=0))


def test_volta_retires_pages_and_ampere_remaps_rows():
    fleet = mixed_fleet()
    volta, ampere = render(fleet, 2), render(fleet, 0)
    assert find(volta, "retired_pending") and not find(volta, "row_remap_failure")
    assert find(ampere, "row_remap_failure") and not find(ampere, "retired_pending")


def test_the_time_scale_multiplies_wall_time():
    wall = [100.0]
    clock = SimClock(60, monotonic=lambda: wall[0])
    wall[0] += 2.5
    assert clock() == 150.0
    with pytest.raises(ValueError):
        SimClock(0)


def test_training_load_holds_memory_and_power_as_real_jobs_do():
    """--workload training on H200s: while a job runs, the framebuffer is 95-99 % used, power sits at
    689-695 W of the 700 W limit with the software power cap flagged, utilization near 100 % and the SM
    clock moving; between jobs the GPU idles. No hardware slowdown ever."""
    fleet = Fleet(from_flags(1, 8, "H200-SXM5-141GB", 0), seed=3, step=5, workload="training")
    busy, idle, clocks = 0, 0, set()
    for minute in range(1, 8 * 60, 5):
        fleet.advance_to(minute * 60)
        body = render(fleet)
        served = {(s.name, s.labels["gpu"]): s.value for s in samples(body)}
        for sim in fleet.hosts[0].gpus:
            used = served[FB_USED, str(sim.index)]
            used /= used + served[FB_FREE, str(sim.index)]
            assert sim.mask & 0x0C8 == 0
            settled = minute * 60 - sim.work.since > 60
            if sim.work.busy and settled:
                busy += 1
                clocks.add(sim.sm_clock)
                assert 0.95 <= used <= 0.99 and 686 <= sim.power <= 698 and sim.utilization >= 96
                assert sim.mask & catalog.CLOCK_EVENT_BITS["power_cap"]
            elif not sim.work.busy and settled:
                idle += 1
                assert used < 0.02 and sim.power < 0.3 * 700
    assert busy > 10 * idle > 0, (busy, idle)
    assert len(clocks) > 20


def test_an_unknown_workload_is_refused():
    with pytest.raises(ValueError, match="unknown workload 'inference'; known: mixed, training"):
        Fleet(from_flags(1, 1, "H200-SXM5-141GB", 0), workload="inference")
