"""Reads GPUs and their MIG instances through pynvml, one field at a time.

Whatever one field raises (an NVML error, a function missing from an older nvidia-ml-py, a
None where a number was due) costs that field only: it is absent from the snapshot and counted
in the error metric, and the GPU's other fields and the other GPUs are still served. A permanent
refusal (nvml_errors.permanent) is counted once and not asked again. GpuIsLost ends a GPU's
reading for the cycle: the caller then serves it as down.

A field's samples are held back until it has read everything and every value is a number, so
a failure never leaves half a field behind. Conversions follow DCGM's units (exporters/README.md,
"What it reads").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pynvml

from .attribution import Attribution
from .collector import ErrorCounts
from .exposition import Builder, Entity, gpu_entity
from .gpm import PCIE_METRICS, PROF_METRICS, GpmSampler, supported
from .gpu import add_clock_events, add_info
from .nvml_errors import Unreadable, expected, permanent
from .nvml_mig import MigProfiles
from .nvml_processes import Processes

log = logging.getLogger(__name__)

_MIB = 1048576
_ALL_LINKS = 0xFFFFFFFF
_NVLINK_ERROR_FIELDS = {  # catalog key -> NVML field id (totals over all lanes)
    "nvlink_crc_flit_errors": pynvml.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL,
    "nvlink_crc_data_errors": pynvml.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL,
    "nvlink_replay_errors": pynvml.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL,
    "nvlink_recovery_errors": pynvml.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL,
}


class GpuLost(Exception):
    """The GPU fell off the bus, or NVML could not open or read it at all: it is served as down."""


@dataclass(eq=False)
class Device:
    index: int
    handle: object | None
    entity: Entity
    info: tuple[str, str, str]  # driver version, serial, VBIOS version
    uuid: str | None = None
    pci_bus_id: str | None = None
    model_name: str | None = None
    unsupported: set[str] = field(default_factory=set)
    gpm: bool | None = None  # None until NVML has answered whether the GPU has GPM
    mig_profiles: MigProfiles | None = None
    nvlink_previous: tuple[float, int] | None = None
    instances: dict[tuple[int, str], Entity] = field(default_factory=dict)

    def instance_entity(self, gi_id: int, profile: str, hostname: str, attributes: tuple = ()) -> Entity:
        key = (gi_id, profile)
        entity = self.instances.get(key)
        if entity is None:
            # UUID on instance series is the parent GPU's, as dcgm-exporter labels them.
            entity = gpu_entity(self.index, self.uuid, self.pci_bus_id, self.model_name, hostname, profile, gi_id)
        entity = self.instances[key] = entity.with_attributes(attributes)
        return entity


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def discover(hostname: str, errors: ErrorCounts) -> list[Device]:
    """Every GPU NVML counts, also those it cannot open: they are served as down, not left out."""
    driver = _optional_text(None, "driver_version", errors, pynvml.nvmlSystemGetDriverVersion)
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            pci = _text(pynvml.nvmlDeviceGetPciInfo(handle).busId)
            name = _text(pynvml.nvmlDeviceGetName(handle))
        except Exception as exc:  # whatever it is, the GPU is served as down, not left out
            _log_failure(index, "identity", exc)
            errors.count(index, "identity")
            devices.append(Device(index, None, gpu_entity(index, None, None, None, hostname), (driver, "", "")))
            continue
        info = (driver, _optional_text(index, "serial", errors, pynvml.nvmlDeviceGetSerial, handle),
                _optional_text(index, "vbios", errors, pynvml.nvmlDeviceGetVbiosVersion, handle))
        devices.append(Device(index, handle, gpu_entity(index, uuid, pci, name, hostname), info,
                              uuid=uuid, pci_bus_id=pci, model_name=name))
    return devices


def _optional_text(index: int | None, what: str, errors: ErrorCounts, getter, *args) -> str:
    """A descriptive string, "" when NVML has none; a failure other than a permanent one is counted."""
    try:
        return _text(getter(*args))
    except Exception as exc:  # an info label is not worth a GPU
        if not permanent(exc):
            _log_failure(index, what, exc)
            errors.count(index, what)
        return ""


def _log_failure(index: int | None, what: str, exc: BaseException, warned: set | None = None) -> None:
    """NVML's answers at debug level; anything else (a bug, an odd value) as a warning with its
    traceback, once per GPU, field and kind of exception when `warned` keeps track (it may recur
    every cycle)."""
    key = (index, what, type(exc))
    if expected(exc) or (warned is not None and key in warned):
        log.debug("GPU %s: %s: %r", index, what, exc)
        return
    if warned is not None:
        warned.add(key)
    log.warning("GPU %s: %s: %r", index, what, exc, exc_info=exc)


def _field_values(handle, ids, member: str) -> list:
    """nvmlDeviceGetFieldValues answers per entry: an entry NVML could not fill is None. When no
    entry could be filled, the first entry's error is raised, so that a field NVML does not
    support is marked as such like any other (and GpuIsLost ends the GPU's cycle)."""
    values = pynvml.nvmlDeviceGetFieldValues(handle, ids)
    filled = [getattr(v.value, member) if v.nvmlReturn == pynvml.NVML_SUCCESS else None for v in values]
    if all(v is None for v in filled):
        raise pynvml.NVMLError(values[0].nvmlReturn)
    return filled


def _temperature(handle) -> int:
    try:
        return pynvml.nvmlDeviceGetTemperatureV(handle, pynvml.NVML_TEMPERATURE_GPU)
    except (AttributeError, pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_ArgumentVersionMismatch):
        # nvidia-ml-py before 12.570 has no nvmlDeviceGetTemperatureV, drivers before R570 neither.
        return pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)


def _checked_temperature(value) -> int:
    if value is None or value > 200:  # DCGM drops readings above 200 C as sensor errors
        raise Unreadable
    return value


def _clock(key: str, clock: int):
    def read(reader: Reader, dev: Device, out: Builder) -> None:
        out.add(key, dev.entity, pynvml.nvmlDeviceGetClockInfo(dev.handle, clock))
    return read


def _gpu_temp(reader, dev, out):
    out.add("gpu_temp", dev.entity, _checked_temperature(_temperature(dev.handle)))


def _memory_temp(reader, dev, out):
    (value,) = _field_values(dev.handle, [pynvml.NVML_FI_DEV_MEMORY_TEMP], "uiVal")
    out.add("memory_temp", dev.entity, _checked_temperature(value))


def _threshold(key: str, threshold: int):
    def read(reader, dev, out):
        value = pynvml.nvmlDeviceGetTemperatureThreshold(dev.handle, threshold)
        out.add(key, dev.entity, _checked_temperature(value))
    return read


def _margin(reader, dev, out):
    out.add("gpu_temp_margin", dev.entity, pynvml.nvmlDeviceGetMarginTemperature(dev.handle))


def _power(reader, dev, out):
    out.add("power_usage", dev.entity, pynvml.nvmlDeviceGetPowerUsage(dev.handle) / 1000)


def _energy(reader, dev, out):
    out.add("total_energy", dev.entity, pynvml.nvmlDeviceGetTotalEnergyConsumption(dev.handle))


def _limit(key: str, getter: str):
    def read(reader, dev, out):
        # Milliwatts to whole watts, truncated as DCGM does.
        out.add(key, dev.entity, getattr(pynvml, getter)(dev.handle) // 1000)
    return read


def _pcie_replay(reader, dev, out):
    out.add("pcie_replay", dev.entity, pynvml.nvmlDeviceGetPcieReplayCounter(dev.handle))


def _pcie_throughput(reader, dev, out):
    """Pre-Hopper fallback: NVML's KB/s over a 20 ms window, not DCGM's GPM rate (which the GPM
    field serves where the GPU has it)."""
    tx = pynvml.nvmlDeviceGetPcieThroughput(dev.handle, pynvml.NVML_PCIE_UTIL_TX_BYTES)
    rx = pynvml.nvmlDeviceGetPcieThroughput(dev.handle, pynvml.NVML_PCIE_UTIL_RX_BYTES)
    out.add("pcie_tx_bytes", dev.entity, tx * 1024)
    out.add("pcie_rx_bytes", dev.entity, rx * 1024)


def _utilization(reader, dev, out):
    rates = pynvml.nvmlDeviceGetUtilizationRates(dev.handle)
    out.add("gpu_util", dev.entity, rates.gpu)
    out.add("mem_copy_util", dev.entity, rates.memory)


def _codec(key: str, getter: str):
    def read(reader, dev, out):
        out.add(key, dev.entity, getattr(pynvml, getter)(dev.handle)[0])  # (percent, sampling period)
    return read


def _clock_events(reader, dev, out):
    try:
        mask = pynvml.nvmlDeviceGetCurrentClocksEventReasons(dev.handle)
    except (AttributeError, pynvml.NVMLError_FunctionNotFound):
        # Drivers before R535 (and their nvidia-ml-py) name it "throttle reasons": the same bitmask.
        mask = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(dev.handle)
    add_clock_events(out, dev.entity, mask)


# SBE = corrected, DBE = uncorrected; volatile since boot, aggregate over the board's life.
_ECC = (
    ("ecc_sbe_volatile", pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC),
    ("ecc_dbe_volatile", pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC),
    ("ecc_sbe_aggregate", pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC),
    ("ecc_dbe_aggregate", pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_AGGREGATE_ECC),
)


def _ecc(key: str, error_type: int, counter_type: int):
    def read(reader, dev, out):
        out.add(key, dev.entity, pynvml.nvmlDeviceGetTotalEccErrors(dev.handle, error_type, counter_type))
    return read


def _retired_pages(reader, dev, out):
    sbe = pynvml.nvmlDeviceGetRetiredPages(dev.handle, pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
    dbe = pynvml.nvmlDeviceGetRetiredPages(dev.handle, pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    out.add("retired_sbe", dev.entity, len(sbe))
    out.add("retired_dbe", dev.entity, len(dbe))


def _retired_pending(reader, dev, out):
    out.add("retired_pending", dev.entity, pynvml.nvmlDeviceGetRetiredPagesPendingStatus(dev.handle))


def _remapped_rows(reader, dev, out):
    correctable, uncorrectable, pending, failure = pynvml.nvmlDeviceGetRemappedRows(dev.handle)[:4]
    out.add("correctable_remapped_rows", dev.entity, correctable)
    out.add("uncorrectable_remapped_rows", dev.entity, uncorrectable)
    out.add("row_remap_pending", dev.entity, int(bool(pending)))
    out.add("row_remap_failure", dev.entity, int(bool(failure)))


def _recovery_action(reader, dev, out):
    """What the driver asks for after an uncorrectable error. Drivers without the field answer
    NotSupported, an nvidia-ml-py without it has no constant: both are permanent, counted once."""
    (action,) = _field_values(dev.handle, [pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION], "uiVal")
    out.add("recovery_action", dev.entity, action)


def _nvlink_errors(reader, dev, out):
    ids = [(field_id, _ALL_LINKS) for field_id in _NVLINK_ERROR_FIELDS.values()]
    values = _field_values(dev.handle, ids, "ullVal")
    for key, value in zip(_NVLINK_ERROR_FIELDS, values, strict=True):
        if value is not None:
            out.add(key, dev.entity, value)


def _nvlink_bandwidth(reader, dev, out):
    """DCGM's NVLINK_BANDWIDTH_TOTAL: the KiB data counters of all links as a rate, (RX+TX delta)
    / seconds / 1000, an integer; the first reading has nothing to compare with and serves 0."""
    ids = [(pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, _ALL_LINKS),
           (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, _ALL_LINKS)]
    rx, tx = _field_values(dev.handle, ids, "ullVal")
    if rx is None or tx is None:
        raise Unreadable("one NVLink data counter of two")
    now, total = reader.monotonic(), rx + tx
    previous, dev.nvlink_previous = dev.nvlink_previous, (now, total)
    rate = 0
    if previous is not None and now > previous[0] and total >= previous[1]:
        rate = int((total - previous[1]) / (now - previous[0]) / 1000)
    out.add("nvlink_bandwidth", dev.entity, rate)


def _vgpu_license(reader, dev, out):
    features = pynvml.nvmlDeviceGetGridLicensableFeatures(dev.handle)
    licensed = 0
    if features.isGridLicenseSupported:
        licensed = int(any(f.featureCode == pynvml.NVML_GRID_LICENSE_FEATURE_CODE_VGPU and f.featureState > 0
                           for f in features.gridLicensableFeatures[:features.licensableFeaturesCount]))
    out.add("vgpu_license_status", dev.entity, licensed)


def _pstate(reader, dev, out):
    state = pynvml.nvmlDeviceGetPerformanceState(dev.handle)
    if state == pynvml.NVML_PSTATE_UNKNOWN:
        raise Unreadable
    out.add("pstate", dev.entity, state)


def _fan(reader, dev, out):
    out.add("fan_speed", dev.entity, pynvml.nvmlDeviceGetFanSpeed(dev.handle))


def _memory_info(handle) -> tuple[int, int, int, int | None]:
    """(used, free, total, reserved) in MiB. v2 first: its `used` excludes reserved memory, as
    DCGM reports it; drivers before R510 only have v1, which has no reserved figure."""
    try:
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        reserved = memory.reserved // _MIB
    except (pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_ArgumentVersionMismatch):
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        reserved = None
    return memory.used // _MIB, memory.free // _MIB, memory.total // _MIB, reserved


def add_memory(out: Builder, entity: Entity, handle) -> None:
    used, free, total, reserved = _memory_info(handle)
    out.add("fb_used", entity, used)
    out.add("fb_free", entity, free)
    out.add("fb_total", entity, total)
    if reserved is not None:
        out.add("fb_reserved", entity, reserved)


def _memory(reader, dev, out):
    add_memory(out, dev.entity, dev.handle)


def _gpm(reader, dev, out):
    metrics = PCIE_METRICS if reader.mig_instances(dev) else {**PROF_METRICS, **PCIE_METRICS}
    for key, value in reader.gpm.read(dev.handle, dev.index, metrics).items():
        out.add(key, dev.entity, value)


GPU_FIELDS: tuple[tuple[str, Callable], ...] = (
    ("sm_clock", _clock("sm_clock", pynvml.NVML_CLOCK_SM)),
    ("mem_clock", _clock("mem_clock", pynvml.NVML_CLOCK_MEM)),
    ("memory_temp", _memory_temp),
    ("gpu_temp", _gpu_temp),
    ("gpu_max_op_temp", _threshold("gpu_max_op_temp", pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX)),
    ("mem_max_op_temp", _threshold("mem_max_op_temp", pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX)),
    ("gpu_temp_margin", _margin),
    ("power_usage", _power),
    ("total_energy", _energy),
    ("power_limit", _limit("power_limit", "nvmlDeviceGetPowerManagementLimit")),
    ("enforced_power_limit", _limit("enforced_power_limit", "nvmlDeviceGetEnforcedPowerLimit")),
    ("pcie_replay", _pcie_replay),
    ("utilization", _utilization),
    ("enc_util", _codec("enc_util", "nvmlDeviceGetEncoderUtilization")),
    ("dec_util", _codec("dec_util", "nvmlDeviceGetDecoderUtilization")),
    ("clock_event_reasons", _clock_events),
    *((key, _ecc(key, error_type, counter_type)) for key, error_type, counter_type in _ECC),
    ("retired_pages", _retired_pages),
    ("retired_pending", _retired_pending),
    ("remapped_rows", _remapped_rows),
    ("recovery_action", _recovery_action),
    ("nvlink_errors", _nvlink_errors),
    ("nvlink_bandwidth", _nvlink_bandwidth),
    ("vgpu_license_status", _vgpu_license),
    ("pstate", _pstate),
    ("fan_speed", _fan),
)


class _Held:
    """One field's samples, held back until the field has read everything: a value that is not
    a number (a None from NVML, a string) fails the field instead of breaking the exposition."""

    __slots__ = ("samples",)

    def __init__(self):
        self.samples: list[tuple] = []

    def add(self, key: str, entity: Entity, value, extra: tuple = ()) -> None:
        if not isinstance(value, int | float):
            raise Unreadable(f"{key}: {value!r} is not a number")
        self.samples.append((key, entity, value, extra))

    def commit(self, out: Builder) -> None:
        for sample in self.samples:
            out.add(*sample)


class Reader:
    """Reads devices into per-GPU builders; keeps what spans cycles (GPM samples, NVLink totals).
    With `attribution`, MIG instances carry the workload labels it gives; with `processes`, each GPU
    also serves its processes."""

    def __init__(self, hostname: str, errors: ErrorCounts, monotonic: Callable[[], float] = time.monotonic,
                 attribution: Attribution | None = None, processes: Processes | None = None):
        self.hostname = hostname
        self.errors = errors
        self.monotonic = monotonic
        self.attribution = attribution
        self.processes = processes
        self.gpm = GpmSampler()
        self._mig: dict[int, list] = {}
        self._warned: set[tuple] = set()

    def read(self, dev: Device) -> Builder:
        """The GPU's samples; raises GpuLost when the GPU fell off the bus or was never opened."""
        if dev.handle is None:
            raise GpuLost
        out = Builder()
        try:
            self._mig[dev.index] = self._enumerate_mig(dev)
            read_any = self._read_fields(dev, out)
            if read_any:
                self._read_instances(dev, out)
        except pynvml.NVMLError_GpuIsLost:
            self.errors.count(dev.index, "gpu_lost")
            self.gpm.forget(dev.index)
            dev.nvlink_previous = None
            raise GpuLost from None
        if not read_any:
            raise GpuLost
        add_info(out, dev.entity, *dev.info)
        return out

    def attempt(self, dev: Device, name: str, read: Callable, *args) -> bool:
        """Calls `read(*args)` for field `name` of `dev`; False when it failed, which is logged
        and counted, and remembered when permanent. GpuIsLost passes: it ends the GPU's cycle."""
        try:
            read(*args)
            return True
        except pynvml.NVMLError_GpuIsLost:
            raise
        except Exception as exc:  # one field's failure, whatever it is, costs that field only
            if permanent(exc):
                dev.unsupported.add(name)
            _log_failure(dev.index, name, exc, self._warned)
            self.errors.count(dev.index, name)
            return False

    def _read_fields(self, dev: Device, out: Builder) -> bool:
        read_any = False
        for name, read in self._fields(dev):
            if name in dev.unsupported:
                continue
            held = _Held()
            if self.attempt(dev, name, read, self, dev, held):
                held.commit(out)
                read_any = True
        return read_any

    def _fields(self, dev: Device):
        yield from GPU_FIELDS
        # A GPU in MIG mode has its framebuffer per instance; the parent's aggregate needs privileges.
        if not self._mig[dev.index]:
            yield "memory", _memory
        if dev.gpm is None and "gpm_support" not in dev.unsupported:
            self.attempt(dev, "gpm_support", _query_gpm, dev)
        if dev.gpm:
            yield "gpm", _gpm
        else:
            yield "pcie_throughput", _pcie_throughput
        if self.processes is not None:
            yield "processes", self.processes.read

    def mig_instances(self, dev: Device) -> list:
        return self._mig.get(dev.index, [])

    def _enumerate_mig(self, dev: Device) -> list[tuple[object, Entity, int]]:
        """(MIG handle, entity, GPU instance id) per instance; [] when MIG is off or unsupported."""
        if "mig" in dev.unsupported:
            return []
        try:
            if pynvml.nvmlDeviceGetMigMode(dev.handle)[0] != pynvml.NVML_DEVICE_MIG_ENABLE:
                return []
            slots = pynvml.nvmlDeviceGetMaxMigDeviceCount(dev.handle)
        except pynvml.NVMLError_GpuIsLost:
            raise
        except Exception as exc:
            if permanent(exc):  # most GPUs have no MIG: not an error
                dev.unsupported.add("mig")
            else:
                _log_failure(dev.index, "mig", exc, self._warned)
                self.errors.count(dev.index, "mig")
            return []
        if dev.mig_profiles is None:
            dev.mig_profiles = MigProfiles(dev.handle)
        instances = []
        for slot in range(slots):
            try:
                handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(dev.handle, slot)
            except (pynvml.NVMLError_NotFound, pynvml.NVMLError_InvalidArgument):
                continue  # slots are sparse
            except pynvml.NVMLError_GpuIsLost:
                raise
            except Exception as exc:  # this slot only
                _log_failure(dev.index, "mig", exc, self._warned)
                self.errors.count(dev.index, "mig")
                continue
            try:
                gi_id = pynvml.nvmlDeviceGetGpuInstanceId(handle)
                profile = dev.mig_profiles.name(gi_id, pynvml.nvmlDeviceGetAttributes_v2(handle))
            except pynvml.NVMLError_GpuIsLost:
                raise
            except Exception as exc:  # this instance only
                _log_failure(dev.index, "mig", exc, self._warned)
                self.errors.count(dev.index, "mig")
                continue
            attributes = self._instance_attributes(dev, handle, gi_id)
            instances.append((handle, dev.instance_entity(gi_id, profile, self.hostname, attributes), gi_id))
        return instances

    def _instance_attributes(self, dev: Device, handle, gi_id: int) -> tuple:
        """The workload labels of a MIG instance; a MIG device UUID NVML does not give costs the
        labels the kubelet gives by it, not the instance."""
        if self.attribution is None:
            return ()
        mig_uuid = None
        if self.attribution.needs_mig_uuid:
            try:
                mig_uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            except pynvml.NVMLError_GpuIsLost:
                raise
            except Exception as exc:
                _log_failure(dev.index, "mig_uuid", exc, self._warned)
                self.errors.count(dev.index, "mig_uuid")
        return self.attribution.instance(dev.index, gi_id, mig_uuid)

    def _read_instances(self, dev: Device, out: Builder) -> None:
        if dev.gpm:
            self.gpm.forget(dev.index, keep={None} | {gi_id for _, _, gi_id in self._mig[dev.index]})
        for handle, entity, gi_id in self._mig[dev.index]:
            held = _Held()
            if "instance_memory" not in dev.unsupported and \
                    self.attempt(dev, "instance_memory", add_memory, held, entity, handle):
                held.commit(out)
            held = _Held()
            if dev.gpm and "instance_gpm" not in dev.unsupported and \
                    self.attempt(dev, "instance_gpm", self._instance_gpm, dev, gi_id, entity, held):
                held.commit(out)

    def _instance_gpm(self, dev: Device, gi_id: int, entity: Entity, out: _Held) -> None:
        for key, value in self.gpm.read(dev.handle, dev.index, PROF_METRICS, gi_id).items():
            out.add(key, entity, value)


def _query_gpm(dev: Device) -> None:
    dev.gpm = supported(dev.handle)
