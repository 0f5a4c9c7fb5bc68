"""GPU physics for the simulator: utilization drives power up to the model's limit, temperature
follows power with a first-order lag cooled by the fan, clocks drop when throttled, counters only
go up.

Everything is stepped in fixed steps of simulated time with one seeded random generator per
GPU, so the same seed and the same fault timings give the same values, however the steps were
scheduled in wall time. Faults (faults.py) act on a GPU only through the knobs below.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gpuobs.gpus import GpuModel, MigProfile

from ..exposition import Builder, Entity
from ..gpu import add_clock_events, add_info, add_xids
from ..xid import XidLog
from .layout import ExporterMode

AMBIENT_C = 30.0
HW_THERMAL_HYSTERESIS_C = 3.0
GENERIC_T_LIMIT_C = 87.0  # current + T.Limit headroom came to 85-88 C on Hopper/Ada (gpu-models.md)
# Memory max operating temperatures where NVIDIA publishes absolute figures (gpu-models.md §2).
MEM_MAX_OP_C = {"A100-SXM4-80GB": 95, "A100-SXM4-40GB": 95, "A100-PCIE-80GB": 95, "V100-SXM2-32GB": 85}
# Typical max SM / memory clocks in MHz: plausible figures for the simulation, not specifications.
CLOCKS_MHZ = {"A100": (1410, 1593), "H100": (1980, 2619), "H200": (1980, 3201), "GH200": (1980, 2619),
              "B200": (1965, 3996), "L40S": (2520, 9001), "L4": (2040, 6251), "A10": (1695, 6251),
              "V100": (1530, 877)}
IDLE_SM_MHZ = 210
DRIVER_VERSION = "550.54.15"
VBIOS_VERSION = "92.00.45.00.06"
XID_WINDOW_S = 300  # dcgm-exporter's default --xid-count-window-size (5 minutes)

_BIT = {"gpu_idle": 0x001, "power_cap": 0x004, "hw_slowdown": 0x008, "sw_thermal": 0x020, "hw_thermal": 0x040}


def _lag(dt: float, tau: float) -> float:
    """Fraction of the way a first-order system moves towards its target in dt."""
    return 1.0 - math.exp(-dt / tau)


@dataclass(frozen=True)
class Physics:
    """Per-model constants, from gpuobs.gpus where it has them."""

    limit_w: float
    idle_w: float
    full_w: float  # draw at 100 % utilization: 80 % of the limit, so a healthy GPU never trips power alerts
    max_op_c: float  # also the T.Limit the margin is measured from
    slowdown_c: float
    r_thermal: float  # C per W at the nominal cooling factor
    sm_mhz: int
    mem_mhz: int
    reports_margin: bool
    mem_max_op_c: float | None

    @classmethod
    def of(cls, model: GpuModel) -> Physics:
        limit = model.power_limit_watts
        max_op = model.gpu_temp_critical or GENERIC_T_LIMIT_C  # the critical fallback is MaxOp
        family = next((k for k in sorted(CLOCKS_MHZ, key=len, reverse=True) if model.key.startswith(k)), "A100")
        sm, mem = CLOCKS_MHZ[family]
        full = 0.8 * limit
        # Sized so a fully loaded GPU, its fan at the speed it settles at, sits near 66 C.
        r_thermal = 35.0 / full
        return cls(limit, 0.15 * limit, full, max_op, max_op + 4, r_thermal, sm, mem,
                   model.reports_temp_margin, MEM_MAX_OP_C.get(model.key))


PATTERNS = ("mixed", "training")
# Training and inference as seen on real GPUs: jobs of hours at near-full utilization, the caching
# allocator (PyTorch, JAX) holding nearly all framebuffer memory, power pinned at the enforced limit by
# the software power cap (689-695 W of 700 W on an H200 under a matmul load), idle gaps between jobs.
JOB_MEAN_S = 4 * 3600
GAP_MEAN_S = 10 * 60
JOB_UTIL = (97.0, 100.0)
JOB_FB_SHARE = (0.95, 0.99)
JOB_POWER_SHARE = (689 / 700, 695 / 700)
JOB_SM_CLOCK_SHARE = (0.85, 0.97)  # boost clock as the power cap moves it
IDLE_FB_SHARE = 0.005


@dataclass
class Workload:
    """A utilization that wanders between job phases, drawn from the GPU's generator. `mixed`: short
    phases of 20-95 %, sometimes idle; `training`: long jobs near 100 % with idle gaps (see above)."""

    util: float
    target: float
    next_change: float
    pattern: str = "mixed"
    busy: bool = True
    fb_share: float = 0.0  # of the framebuffer the running job's allocator holds (training)
    since: float = 0.0  # simulated second the current job or gap began (training)
    idle: bool = False  # held by a workload that does nothing (a notebook left open), whatever the pattern

    @classmethod
    def start(cls, rng: random.Random, pattern: str, idle: bool = False) -> Workload:
        if idle:
            return cls(rng.uniform(20, 80) / 40, rng.uniform(0, 3), rng.uniform(0, 120), pattern, False, idle=True)
        if pattern == "training":
            util = rng.uniform(*JOB_UTIL)
            return cls(util, util, rng.expovariate(1 / JOB_MEAN_S), pattern, True, rng.uniform(*JOB_FB_SHARE))
        return cls(rng.uniform(20, 80), rng.uniform(20, 95), rng.uniform(0, 120))

    def step(self, rng: random.Random, t: float, dt: float) -> None:
        if t >= self.next_change:
            if self.idle:  # an idle workload's GPU stays under 3 %
                self.target = rng.uniform(0, 3)
                self.next_change = t + rng.expovariate(1 / 120)
            elif self.pattern == "training":
                self.busy, self.since = not self.busy, t
                self.fb_share = rng.uniform(*JOB_FB_SHARE) if self.busy else IDLE_FB_SHARE
                self.target = rng.uniform(*JOB_UTIL) if self.busy else rng.uniform(0, 2)
                self.next_change = t + rng.expovariate(1 / (JOB_MEAN_S if self.busy else GAP_MEAN_S))
            else:
                # Mostly busy, sometimes idle between jobs.
                self.target = rng.uniform(0, 3) if rng.random() < 0.1 else rng.uniform(20, 95)
                self.next_change = t + rng.expovariate(1 / 120)
        self.util += (self.target - self.util) * _lag(dt, 5.0)

    @property
    def pinned(self) -> bool:
        """A training job holds the GPU at its power limit."""
        return self.pattern == "training" and self.busy


@dataclass
class Instance:
    """A MIG GPU instance with its own workload and framebuffer share."""

    gi_id: int
    profile: MigProfile
    fb_total: int
    entity: Entity
    work: Workload
    fb_used: float = 0.0


@dataclass
class Knobs:
    """What faults can turn; physics reads them every step."""

    heat_c: dict[str, float] = field(default_factory=dict)  # added to the ambient, per fault
    fan_failed: bool = False
    power_override_w: float | None = None
    leak_mib: float = 0.0  # leaked so far, on top of the working set
    leak_cap_ratio: float = 0.97
    lost: bool = False


@dataclass
class SimGpu:
    host: str
    index: int
    model: GpuModel
    entity: Entity
    serial: str
    rng: random.Random
    xids: XidLog
    instances: list[Instance] = field(default_factory=list)
    exporter: ExporterMode = ExporterMode()
    knobs: Knobs = field(default_factory=Knobs)
    counters: dict[str, float] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    pattern: str = "mixed"
    idle: bool = False  # held by an idle workload (fleet.SimHost decides which GPUs)

    def __post_init__(self):
        self.physics = Physics.of(self.model)
        p = self.physics
        rng = self.rng
        self.work = Workload.start(rng, self.pattern, self.idle)
        self.power = p.idle_w + (p.full_w - p.idle_w) * self.work.util / 100
        self.fan = 60.0
        self.temp = AMBIENT_C + self.power * p.r_thermal / self._cooling()
        self.mem_temp = self.temp + 6
        self.hw_thermal = False
        self.reserved_mib = int(self.model.memory_mib * 0.006)
        self.fb_used = self.model.memory_mib * (self.work.fb_share or rng.uniform(0.2, 0.6))
        for inst in self.instances:
            inst.fb_used = inst.fb_total * rng.uniform(0.2, 0.6)
        self.energy_mj = rng.uniform(1e9, 5e9)
        self.mask = 0
        self.t = 0.0  # simulated seconds at the end of the latest step
        self.recent_xids: deque[tuple[float, int]] = deque()  # (simulated second, code) within XID_WINDOW_S
        self.sm_clock = p.sm_mhz
        for key in ("ecc_sbe_volatile", "ecc_dbe_volatile", "ecc_sbe_aggregate", "ecc_dbe_aggregate",
                    "retired_sbe", "retired_dbe", "correctable_remapped_rows", "uncorrectable_remapped_rows",
                    "pcie_replay", "nvlink_crc_flit_errors", "nvlink_crc_data_errors", "nvlink_replay_errors",
                    "nvlink_recovery_errors"):
            self.counters.setdefault(key, 0.0)
        for key in ("retired_pending", "row_remap_pending", "row_remap_failure", "recovery_action"):
            self.flags.setdefault(key, 0)

    @property
    def mig(self) -> bool:
        return bool(self.instances)

    @property
    def utilization(self) -> float:
        """Whole-GPU utilization: the instances' weighted by their compute slices under MIG."""
        if not self.instances:
            return self.work.util
        return sum(i.work.util * i.profile.compute_slices for i in self.instances) / 7

    @property
    def margin(self) -> float:
        return self.physics.max_op_c - self.temp

    def count(self, key: str, amount: float) -> None:
        self.counters[key] += amount

    def xid(self, code: int, when: float) -> None:
        self.xids.record(self.index, code, when)
        self.recent_xids.append((self.t, code))

    @property
    def gpu_entities(self) -> list[Entity]:
        """What GPU-level series describe: the GPU, except that dcgm-exporter repeats them on every
        MIG instance of a partitioned GPU, with the instance's labels."""
        if self.instances and self.exporter.dcgm_exporter:
            return [inst.entity for inst in self.instances]
        return [self.entity]

    def step(self, t: float, dt: float) -> None:
        p, k, rng = self.physics, self.knobs, self.rng
        self.work.step(rng, t, dt)
        for inst in self.instances:
            inst.work.step(rng, t, dt)
        util = self.utilization
        throttle = 0.5 if self.hw_thermal else 1.0
        target_w = (p.idle_w + (p.full_w - p.idle_w) * util / 100) * throttle
        noise = 0.005
        if self.work.pinned and not self.instances:
            target_w, noise = p.limit_w * rng.uniform(*JOB_POWER_SHARE) * throttle, 0.001
        if k.power_override_w is not None:
            target_w = k.power_override_w
        self.power += (target_w - self.power) * _lag(dt, 2.0) + rng.gauss(0, noise * p.limit_w)
        self.power = max(self.power, 0.05 * p.limit_w)
        fan_target = 0.0 if k.fan_failed else min(100.0, max(30.0, 30 + 2.2 * (self.temp - 45)))
        self.fan += (fan_target - self.fan) * (1.0 if k.fan_failed else _lag(dt, 10.0))
        equilibrium = AMBIENT_C + sum(k.heat_c.values()) + self.power * p.r_thermal / self._cooling()
        self.temp += (equilibrium - self.temp) * _lag(dt, 40.0) + rng.gauss(0, 0.1)
        self.mem_temp += (self.temp + 6 - self.mem_temp) * _lag(dt, 20.0)
        if self.temp >= p.slowdown_c:
            self.hw_thermal = True
        elif self.temp < p.slowdown_c - HW_THERMAL_HYSTERESIS_C:
            self.hw_thermal = False
        self.energy_mj += self.power * dt * 1000
        self._memory(dt)
        self._clocks(util)
        self.t = t + dt
        while self.recent_xids and self.recent_xids[0][0] <= self.t - XID_WINDOW_S:
            self.recent_xids.popleft()

    def heat_to_settle_at(self, temp_c: float) -> float:
        """Fault heat that puts the thermal equilibrium at temp_c, with today's power and airflow
        and other faults' heat; recomputed every step, it holds the GPU there as its load changes."""
        others = sum(v for k, v in self.knobs.heat_c.items() if k != "thermal-runaway")
        return temp_c - AMBIENT_C - others - self.power * self.physics.r_thermal / self._cooling()

    def _cooling(self) -> float:
        """Airflow: some with the fan stopped, about five times as much at full speed."""
        return 0.2 + self.fan / 100

    @property
    def fb_total(self) -> int:
        """Framebuffer NVML counts as used or free: the board's less the driver's reserve."""
        return self.model.memory_mib - self.reserved_mib

    def _memory(self, dt: float) -> None:
        for share in self.instances or [self]:
            work = share.work
            if work.pattern == "training":  # the allocator takes its share at once and keeps it
                share.fb_used += (share.fb_total * work.fb_share - share.fb_used) * _lag(dt, 5.0)
            else:
                target = share.fb_total * (0.15 + 0.5 * work.util / 100)
                share.fb_used += (target - share.fb_used) * _lag(dt, 60.0)

    def _fb_served(self, share) -> int:
        """The working set, plus a leak in the first instance (or the whole GPU), capped."""
        used = share.fb_used
        if self.knobs.leak_mib and share is (self.instances or [self])[0]:
            used = min(used + self.knobs.leak_mib, share.fb_total * self.knobs.leak_cap_ratio)
        return int(used)

    def _clocks(self, util: float) -> None:
        p = self.physics
        mask = 0
        if util < 5:
            mask |= _BIT["gpu_idle"]
        if self.power >= 0.97 * p.limit_w and self.knobs.power_override_w is None:
            mask |= _BIT["power_cap"]
        if self.temp >= p.max_op_c:
            mask |= _BIT["sw_thermal"]
        if self.hw_thermal:
            mask |= _BIT["hw_thermal"] | _BIT["hw_slowdown"]
        self.mask = mask
        clock = IDLE_SM_MHZ if util < 5 else p.sm_mhz
        if mask & _BIT["power_cap"] and self.work.pinned:
            clock *= self.rng.uniform(*JOB_SM_CLOCK_SHARE)
        self.sm_clock = int(clock * (0.5 if self.hw_thermal else 1.0))

    def emit(self, out: Builder) -> None:
        """This GPU's series, as the exporter it imitates would serve a real one; `out` leaves out
        the metrics that exporter does not serve."""
        if self.knobs.lost:
            for e in self.gpu_entities:
                out.add("gpu_up", e, 0)
                self._emit_xids(out, e)
            return
        util = self.utilization
        for e in self.gpu_entities:
            self._emit_gpu(out, e, util)
        if not self.mig:  # under MIG each instance has its own activity and memory
            self._emit_activity(out, self.entity, util)
            self._emit_fb(out, self.entity, self._fb_served(self), self.fb_total, self.reserved_mib)
        for inst in self.instances:
            self._emit_activity(out, inst.entity, inst.work.util)
            self._emit_fb(out, inst.entity, self._fb_served(inst), inst.fb_total, 0)

    def _emit_gpu(self, out: Builder, e: Entity, util: float) -> None:
        p, c, add = self.physics, self.counters, out.add
        add("gpu_up", e, 1)
        add("sm_clock", e, self.sm_clock)
        add("mem_clock", e, p.mem_mhz)
        add("memory_temp", e, round(self.mem_temp))
        add("gpu_temp", e, round(self.temp))
        if p.reports_margin:
            add("gpu_temp_margin", e, round(self.margin))
        else:
            add("gpu_max_op_temp", e, int(p.max_op_c))
        if p.mem_max_op_c is not None:
            add("mem_max_op_temp", e, p.mem_max_op_c)
        add("power_usage", e, round(self.power, 3))
        add("total_energy", e, int(self.energy_mj))
        add("power_limit", e, int(p.limit_w))
        add("enforced_power_limit", e, int(p.limit_w))
        add("pcie_replay", e, int(c["pcie_replay"]))
        add("pcie_tx_bytes", e, int(util * 2.0e7))
        add("pcie_rx_bytes", e, int(util * 4.0e7))
        if not self.mig:  # NVML has no whole-GPU utilization under MIG
            add("gpu_util", e, round(util))
            add("mem_copy_util", e, round(util * 0.6))
            add("enc_util", e, 0)
            add("dec_util", e, 0)
        self._emit_xids(out, e)
        add_clock_events(out, e, self.mask)
        for key in ("ecc_sbe_volatile", "ecc_dbe_volatile", "ecc_sbe_aggregate", "ecc_dbe_aggregate"):
            add(key, e, int(c[key]))
        if not self.model.row_remapping:  # Volta retires pages instead of remapping rows
            add("retired_sbe", e, int(c["retired_sbe"]))
            add("retired_dbe", e, int(c["retired_dbe"]))
            add("retired_pending", e, self.flags["retired_pending"])
        elif not self.mig:  # NVML cannot query remapped rows while MIG instances exist
            add("uncorrectable_remapped_rows", e, int(c["uncorrectable_remapped_rows"]))
            add("correctable_remapped_rows", e, int(c["correctable_remapped_rows"]))
            add("row_remap_failure", e, self.flags["row_remap_failure"])
            add("row_remap_pending", e, self.flags["row_remap_pending"])
        add("recovery_action", e, self.flags["recovery_action"])
        if self.model.nvlink_links:
            add("nvlink_bandwidth", e, int(self.model.nvlink_links * 250 * util))
            for key in ("nvlink_crc_flit_errors", "nvlink_crc_data_errors", "nvlink_replay_errors",
                        "nvlink_recovery_errors"):
                add(key, e, int(c[key]))
        add("vgpu_license_status", e, 0)
        add("pstate", e, 8 if util < 5 else 0)
        add("fan_speed", e, round(self.fan))
        add_info(out, e, DRIVER_VERSION, self.serial, VBIOS_VERSION)

    def _emit_xids(self, out: Builder, e: Entity) -> None:
        xids = self.xids.get(self.index)
        add_xids(out, e, xids)
        if xids is None and self.exporter.dcgm_exporter and self.exporter.version == 3:
            # dcgm-exporter 3.x serves the field before any XID too (4.x skips the blank value).
            out.add("xid_last", e, 0, (("err_code", 0), ("err_msg", "No Error")))
        # dcgm-exporter's XID-count collector: per code within the window, or one zero without an xid label.
        window = (("window_size_in_ms", XID_WINDOW_S * 1000),)
        counts = Counter(code for _, code in self.recent_xids)
        for code in sorted(counts):
            out.add("xid_window_count", e, counts[code], (*window, ("xid", code)))
        if not counts:
            out.add("xid_window_count", e, 0, window)

    @staticmethod
    def _emit_activity(out: Builder, entity: Entity, util: float) -> None:
        out.add("gr_engine_active", entity, round(util / 100, 4))
        out.add("tensor_active", entity, round(util * 0.006, 4))
        out.add("dram_active", entity, round(util * 0.004, 4))

    @staticmethod
    def _emit_fb(out: Builder, entity: Entity, used: int, total: int, reserved: int) -> None:
        out.add("fb_used", entity, used)
        out.add("fb_free", entity, total - used)
        out.add("fb_total", entity, total + reserved)
        out.add("fb_reserved", entity, reserved)


def make_instances(model: GpuModel, profiles: list[str], entity: Callable[[str, int], Entity],
                   rng: random.Random, pattern: str = "mixed") -> list[Instance]:
    """MIG instances in the order given, GPU instance ids from 1, memory in eighths of the GPU;
    `entity(profile, gi_id)` labels each."""
    by_name = {p.name: p for p in model.mig_profiles}
    instances = []
    for gi_id, name in enumerate(profiles, 1):
        profile = by_name[name]
        fb_total = model.memory_mib * profile.memory_slices // 8
        work = Workload.start(rng, pattern)
        instances.append(Instance(gi_id, profile, fb_total, entity(name, gi_id), work))
    return instances
