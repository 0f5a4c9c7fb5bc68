"""Named faults: what each does to a simulated GPU (or host), with its parameters.

Each fault pushes the metrics a generated alert reads past its threshold (see
gpuobs/generators/rules.py), so an end-to-end test can prove the alert fires; stopping it
returns the GPU to health, except for counters, which only go up, and for what an XID leaves
waiting for a GPU reset (a pending row remap, the driver's recovery action), which the gpu-reset
fault clears as a real reset would.
"""

from __future__ import annotations

import math

from gpuobs import xid_catalog

from .model import SimGpu


class FaultError(ValueError):
    pass


class Fault:
    """A kind of fault. Its methods get the SimGpu it acts on (the SimHost for host-level ones)."""

    name = ""
    description = ""
    params: dict[str, float] = {}
    # (lowest, highest) a parameter may take, where PARAM_RANGE is too wide for it.
    limits: dict[str, tuple[float, float]] = {}
    host_level = False  # acts on the host's exporter, not on a GPU

    def check(self, gpu: SimGpu) -> str | None:
        """Why this fault cannot show on this GPU, or None."""
        return None

    def start(self, gpu: SimGpu, p: dict, now: float) -> None:
        """Once, when the fault starts; `now` is simulated Unix time (XID timestamps)."""

    def step(self, gpu: SimGpu, p: dict, elapsed: float, dt: float) -> None:
        """Every physics step while active; `elapsed` simulated seconds since the start."""

    def stop(self, gpu: SimGpu, p: dict) -> None:
        """Once, when stopped: undo what is not a counter."""


class ThermalRunaway(Fault):
    name = "thermal-runaway"
    description = ("Cooling is lost: heat builds up by rate_c_per_min up to max_rise_c, beyond what "
                   "throttling can shed, so the GPU passes its max operating temperature (and T.Limit). "
                   "With settle_c > 0 the loss is partial: the GPU settles at settle_c whatever its load. "
                   "With from_c > 0 the GPU is held on a line instead, whatever its load: from_c at the "
                   "start, rising rate_c_per_min (cooling failing slowly from a hot plateau).")
    params = {"rate_c_per_min": 10.0, "max_rise_c": 60.0, "settle_c": 0.0, "from_c": 0.0}

    def step(self, gpu, p, elapsed, dt):
        if p["from_c"] > 0:
            line = p["from_c"] + p["rate_c_per_min"] * elapsed / 60
            if p["settle_c"] > 0:
                line = min(line, p["settle_c"])
            heat = max(0.0, gpu.heat_to_settle_at(line))
        else:
            heat = min(p["max_rise_c"], p["rate_c_per_min"] * elapsed / 60)
            if p["settle_c"] > 0:
                heat = min(heat, max(0.0, gpu.heat_to_settle_at(p["settle_c"])))
        gpu.knobs.heat_c[self.name] = heat

    def stop(self, gpu, p):
        gpu.knobs.heat_c.pop(self.name, None)


class FanFailure(Fault):
    name = "fan-failure"
    description = ("The fan stops (speed 0) and the chassis air warms by inlet_rise_c over a few minutes; "
                   "the GPU heats past its limits and hardware thermal slowdown starts.")
    params = {"inlet_rise_c": 25.0}

    def start(self, gpu, p, now):
        gpu.knobs.fan_failed = True

    def step(self, gpu, p, elapsed, dt):
        gpu.knobs.heat_c[self.name] = min(p["inlet_rise_c"], p["inlet_rise_c"] * elapsed / 180)

    def stop(self, gpu, p):
        gpu.knobs.fan_failed = False
        gpu.knobs.heat_c.pop(self.name, None)


class EccStorm(Fault):
    name = "ecc-storm"
    description = "Correctable (single-bit) ECC errors at sbe_per_s, and uncorrectable ones at dbe_per_s."
    params = {"sbe_per_s": 1.0, "dbe_per_s": 0.0}

    def step(self, gpu, p, elapsed, dt):
        for kind in ("sbe", "dbe"):
            amount = p[f"{kind}_per_s"] * dt
            gpu.count(f"ecc_{kind}_volatile", amount)
            gpu.count(f"ecc_{kind}_aggregate", amount)


# NVML's GPU recovery actions (nvmlDeviceGpuRecoveryAction_t) the simulator sets.
NO_ACTION, GPU_RESET, LAST_ACTION = 0, 1, 7


class Xid(Fault):
    name = "xid"
    description = ("One XID event with the given code: any code of NVIDIA's catalog (gpuobs/xid_catalog.py), "
                   "or another (999 is NVML's code for one it cannot name). With follow_ons 1, the codes the "
                   "catalog says follow it come next (e.g. 13 then 43 and 45, 48 then 63). With recovery_action, "
                   "the action the driver asks for with it (0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 "
                   "drain and reset, ...), pending until a gpu-reset.")
    params = {"code": 13, "follow_ons": 0, "recovery_action": NO_ACTION}
    limits = {"code": (1, 999), "follow_ons": (0, 1), "recovery_action": (NO_ACTION, LAST_ACTION)}

    def start(self, gpu, p, now):
        code = int(p["code"])
        gpu.xid(code, now)
        if p["follow_ons"]:
            for later in xid_catalog.follow_ons(code):
                gpu.xid(later, now)
        if p["recovery_action"]:
            gpu.flags["recovery_action"] = int(p["recovery_action"])


def _uncorrectable(gpu: SimGpu, now: float, *codes: int) -> None:
    """An uncorrectable ECC error: its XIDs logged, the volatile and aggregate DBE counters up by one."""
    for code in codes:
        gpu.xid(code, now)
    gpu.count("ecc_dbe_volatile", 1)
    gpu.count("ecc_dbe_aggregate", 1)


class Xid48(Fault):
    name = "xid-48"
    description = ("XID 48, a double-bit ECC error: the DBE counters go up by one, the bad row waits for "
                   "remapping (pages for retirement on Volta) and the driver asks for a GPU reset, both until "
                   "a gpu-reset.")

    def start(self, gpu, p, now):
        _uncorrectable(gpu, now, 48)
        gpu.flags["recovery_action"] = GPU_RESET
        if gpu.model.row_remapping:
            gpu.count("uncorrectable_remapped_rows", 1)
            gpu.flags["row_remap_pending"] = 1
        else:
            gpu.count("retired_dbe", 1)
            gpu.flags["retired_pending"] = 1


class GpuReset(Fault):
    name = "gpu-reset"
    description = ("The GPU is reset (nvidia-smi -r, or the driver reloaded), once, at the start: the volatile "
                   "ECC counts return to 0, pending row remaps and page retirements take effect, and the "
                   "driver's recovery action clears. A failed remap, the aggregate counts and the exporter's "
                   "XID history stay.")

    def start(self, gpu, p, now):
        gpu.counters["ecc_sbe_volatile"] = gpu.counters["ecc_dbe_volatile"] = 0.0
        gpu.flags["row_remap_pending"] = gpu.flags["retired_pending"] = 0
        gpu.flags["recovery_action"] = NO_ACTION


class SramEcc(Fault):
    name = "sram-ecc"
    description = ("An uncorrectable error in on-chip SRAM: XID 48 and its SRAM detail (XID 172), the DBE counters "
                   "up by one, and the driver asks for a GPU reset; unlike DRAM, no row waits for remapping.")

    def start(self, gpu, p, now):
        _uncorrectable(gpu, now, 48, 172)
        gpu.flags["recovery_action"] = GPU_RESET


class Xid79(Fault):
    name = "xid-79"
    description = ("XID 79, the GPU falls off the bus: the XID 79 counter goes up, and lost_after_s later "
                   "gpu_up drops to 0 and the GPU's readings vanish (its XID history stays). Stopping it "
                   "brings the GPU back, as a reboot would.")
    params = {"lost_after_s": 15.0}

    def start(self, gpu, p, now):
        gpu.xid(79, now)
        gpu.knobs.lost = p["lost_after_s"] <= 0

    def step(self, gpu, p, elapsed, dt):
        if elapsed >= p["lost_after_s"]:
            gpu.knobs.lost = True

    def stop(self, gpu, p):
        gpu.knobs.lost = False


class _NeedsRowRemapping(Fault):
    def check(self, gpu):
        if not gpu.model.row_remapping:
            return f"{gpu.model.key} retires pages instead of remapping rows"
        if gpu.mig:
            return "NVML does not report remapped rows while MIG instances exist"
        return None


class RowRemapFailure(_NeedsRowRemapping):
    name = "row-remap-failure"
    description = "A row remap fails: DCGM_FI_DEV_ROW_REMAP_FAILURE is 1 and one more uncorrectable row is counted."

    def start(self, gpu, p, now):
        gpu.count("uncorrectable_remapped_rows", 1)
        gpu.flags["row_remap_failure"] = 1

    def stop(self, gpu, p):
        gpu.flags["row_remap_failure"] = 0


class RowRemapPending(Fault):
    name = "row-remap-pending"
    description = "A row remap (page retirement on Volta) waits for a GPU reset."

    def check(self, gpu):
        if gpu.model.row_remapping and gpu.mig:
            return "NVML does not report remapped rows while MIG instances exist"
        return None

    def start(self, gpu, p, now):
        gpu.flags["row_remap_pending" if gpu.model.row_remapping else "retired_pending"] = 1

    def stop(self, gpu, p):
        gpu.flags["row_remap_pending"] = gpu.flags["retired_pending"] = 0


class PowerExcursion(Fault):
    name = "power-excursion"
    description = "Power draw jumps to factor x the enforced power limit (a telemetry or power-delivery fault)."
    params = {"factor": 1.2}
    limits = {"factor": (0.0, 10.0)}

    def step(self, gpu, p, elapsed, dt):
        gpu.knobs.power_override_w = gpu.physics.limit_w * p["factor"]

    def stop(self, gpu, p):
        gpu.knobs.power_override_w = None


class MemoryLeak(Fault):
    name = "memory-leak"
    description = ("Framebuffer use grows by mib_per_s (default: the whole framebuffer in 5 simulated "
                   "minutes) until max_ratio of it is used; stopping it frees the leak.")
    params = {"mib_per_s": 0.0, "max_ratio": 0.97}
    limits = {"max_ratio": (0.0, 1.0)}

    def step(self, gpu, p, elapsed, dt):
        rate = p["mib_per_s"] or gpu.model.memory_mib / 300
        gpu.knobs.leak_cap_ratio = p["max_ratio"]
        gpu.knobs.leak_mib = min(gpu.knobs.leak_mib + rate * dt, gpu.model.memory_mib)

    def stop(self, gpu, p):
        gpu.knobs.leak_mib = 0.0


class NvlinkErrors(Fault):
    name = "nvlink-errors"
    description = "NVLink CRC (flit and data), replay and recovery error counters each rise by per_s."
    params = {"per_s": 1.0}

    def check(self, gpu):
        return None if gpu.model.nvlink_links else f"{gpu.model.key} has no NVLink"

    def step(self, gpu, p, elapsed, dt):
        for key in ("nvlink_crc_flit_errors", "nvlink_crc_data_errors", "nvlink_replay_errors",
                    "nvlink_recovery_errors"):
            gpu.count(key, p["per_s"] * dt)


class PcieReplayErrors(Fault):
    name = "pcie-replay-errors"
    description = "The PCIe replay counter rises by per_s."
    params = {"per_s": 1.0}

    def step(self, gpu, p, elapsed, dt):
        gpu.count("pcie_replay", p["per_s"] * dt)


class ExporterHang(Fault):
    name = "exporter-hang"
    description = ("The host's /metrics stops answering: each scrape hangs for `seconds` (past any scrape "
                   "timeout), then the connection is dropped unanswered. Host-level: no gpu.")
    params = {"seconds": 30.0}
    host_level = True

    def start(self, host, p, now):
        host.hang_seconds = p["seconds"]
        host.hung = True

    def stop(self, host, p):
        host.hung = False


class CollectionStall(Fault):
    name = "collection-stall"
    description = ("The host's collection stops (a wedged NVML call) while /metrics keeps answering with the "
                   "last snapshot: readings and the last-success time freeze. Host-level: no gpu.")
    params = {}
    host_level = True

    def start(self, host, p, now):
        host.stalled = True

    def stop(self, host, p):
        host.stalled = False


FAULTS: dict[str, Fault] = {f.name: f for f in (
    ThermalRunaway(), FanFailure(), EccStorm(), Xid79(), Xid48(), SramEcc(), Xid(), GpuReset(), RowRemapFailure(),
    RowRemapPending(), PowerExcursion(), MemoryLeak(), NvlinkErrors(), PcieReplayErrors(), ExporterHang(),
    CollectionStall(),
)}


# Every parameter is a finite, non-negative number of at most this (a rate, a duration, a rise):
# an infinite or huge one would turn the GPU's readings into inf or NaN for good.
PARAM_RANGE = (0.0, 1e6)


def resolve_params(fault: Fault, given: dict | None) -> dict:
    """The fault's defaults with `given` laid over; unknown names, non-numbers and values out of
    range are errors."""
    given = dict(given or {})
    unknown = set(given) - set(fault.params)
    if unknown:
        allowed = ", ".join(fault.params) or "none"
        raise FaultError(f"{fault.name}: unknown parameters {sorted(unknown)}; allowed: {allowed}")
    params = dict(fault.params)
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultError(f"{fault.name}: parameter {name} must be a number, not {value!r}")
        low, high = fault.limits.get(name, PARAM_RANGE)
        if not math.isfinite(value) or not low <= value <= high:
            raise FaultError(f"{fault.name}: parameter {name} must be between {low:g} and {high:g}, not {value!r}")
        params[name] = value
    return params


def catalog() -> dict[str, dict]:
    """Names, descriptions and default parameters, as the control API lists them."""
    return {f.name: {"description": f.description, "params": dict(f.params),
                     "target": "host" if f.host_level else "gpu"} for f in FAULTS.values()}
