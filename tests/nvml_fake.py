"""A fake NVML for tests without a GPU: the real pynvml module with its functions replaced.

Every `nvml*` function of pynvml is swapped for a stub (unknown ones fail the test when called),
so the exporter runs its real code paths, error classes and constants against scripted GPUs.
The stubs keep pynvml's signatures and return what pynvml returns: its ctypes structures
(bytes in their char fields), str from string getters, opaque ctypes handles
(tests/test_nvml_conformance.py checks all of it against the installed pynvml).
"""

from __future__ import annotations

import ctypes
import itertools
import queue
import threading
from dataclasses import dataclass, field

import pynvml

MIB = 1048576
_NVLINK_DATA = (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX)
_FRIENDLY = pynvml.nvmlStructToFriendlyObject  # pynvml's own helper, kept from install() replacing nvml* names


@dataclass(frozen=True)
class FakeProfile:
    """A GPU instance profile as nvmlDeviceGetGpuInstanceProfileInfo describes it."""
    index: int  # NVML_GPU_INSTANCE_PROFILE_*
    id: int
    name: str
    slices: int
    memory_mb: int
    decoders: int = 0
    jpeg: int = 0
    ofa: int = 0


# What `nvidia-smi mig -lgip` lists on an A100-SXM4-80GB.
A100_80GB_PROFILES = (
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE, 19, "MIG 1g.10gb", 1, 9728),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, "MIG 1g.10gb+me", 1, 9728, 1, 1, 1),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, "MIG 1g.20gb", 1, 19968, 1),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE, 14, "MIG 2g.20gb", 2, 19968, 1),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_3_SLICE, 9, "MIG 3g.40gb", 3, 40192, 2),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_4_SLICE, 5, "MIG 4g.40gb", 4, 40192, 2),
    FakeProfile(pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE, 0, "MIG 7g.80gb", 7, 80640, 5, 1, 1),
)


@dataclass
class FakeMig:
    gi_id: int
    profile: str  # a name of A100_80GB_PROFILES, without "MIG "
    used_mib: int = 1000


@dataclass
class FakeProcess:
    pid: int
    memory_mib: int | None = 1000  # None: NVML does not say (NVML_VALUE_NOT_AVAILABLE)
    name: str | None = "python3"  # None: nvmlSystemGetProcessName answers NoPermission
    sm: int | None = None  # percent in the utilization samples; None: no sample
    gi_id: int | None = None  # the MIG instance it runs in
    graphics: bool = False  # listed by nvmlDeviceGetGraphicsRunningProcesses instead of ...Compute...


@dataclass
class FakeGpu:
    index: int
    name: str = "NVIDIA A100-SXM4-80GB"
    temp: int = 45
    memory_temp: int | None = 50  # None: the field-values entry answers NotSupported
    max_op: int | None = 85
    mem_max_op: int | None = 95
    margin: int | None = None
    power_mw: int = 250_000
    energy_mj: int = 1_000_000
    limit_mw: int = 400_000
    enforced_mw: int = 400_000
    reasons: int = 0
    ecc: dict = field(default_factory=lambda: {(0, 0): 0, (1, 0): 0, (0, 1): 3, (1, 1): 0})
    remapped: tuple = (0, 0, 0, 0)
    recovery_action: int | None = 0  # NVML_GPU_RECOVERY_ACTION_*; None: NotSupported (an older driver)
    retired: dict | None = None  # cause -> pages: Volta; None: NotSupported (Ampere remaps rows)
    nvlink_errors: dict = field(default_factory=lambda: {38: 0, 45: 0, 52: 0, 59: 0})
    nvlink_data_kib: int | None = 0  # None: NotSupported (no NVLink)
    memory_total_mib: int = 81920
    memory_used_mib: int = 20000
    memory_reserved_mib: int = 500
    fan: int | None = None
    vgpu_licensed: int | None = None  # None: not a vGPU guest (NotSupported)
    gpm: bool = False
    gpm_values: dict = field(default_factory=lambda: {1: 50.0, 5: 25.0, 10: 40.0, 20: 100.0, 21: 200.0})
    mig: list[FakeMig] = field(default_factory=list)
    mig_profiles: tuple[FakeProfile, ...] = A100_80GB_PROFILES
    processes: list[FakeProcess] = field(default_factory=list)
    lost: bool = False
    # function name -> NVML error code, or an exception to raise
    fail: dict[str, int | BaseException] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return f"GPU-{self.index:08x}-fake-0000-0000-000000000000"

    @property
    def bus_id(self) -> str:
        return f"00000000:{0x10 + self.index:02X}:00.0"

    def profile(self, name: str) -> FakeProfile:
        return next(p for p in self.mig_profiles if p.name == f"MIG {name}")

    def mig_uuid(self, gi_id: int) -> str:
        return f"MIG-{self.index:08x}-{gi_id:04x}-fake-0000-000000000000"


@dataclass(frozen=True)
class _MigDevice:
    parent: FakeGpu
    mig: FakeMig


@dataclass(frozen=True)
class _GpuInstance:
    parent: FakeGpu
    mig: FakeMig


def _address(pointer) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu], driver: str = "550.54.15", init_error: int | None = None):
        self.gpus = gpus
        self.driver = driver
        self.init_error = init_error
        self.events: queue.Queue = queue.Queue()
        self.live_samples: dict[int, tuple] = {}
        self._sample_ids = itertools.count(0x1000, 0x10)
        self.utilization_time = 1_000_000  # µs: the timestamp of the process utilization samples
        self._lock = threading.Lock()
        self._objects: dict[int, object] = {}  # handle address -> what it stands for
        self._addresses: dict[tuple, int] = {}
        self._next_address = itertools.count(0x100000, 0x10)

    # -- scripting -----------------------------------------------------------------------
    def xid(self, index: int, code: int) -> None:
        data = pynvml.c_nvmlEventData_t()
        data.device = self.handle(self.gpus[index])
        data.eventType = pynvml.nvmlEventTypeXidCriticalError
        data.eventData = code
        data.gpuInstanceId = data.computeInstanceId = 0xFFFFFFFF
        self.events.put(data)

    def install(self, monkeypatch) -> FakeNvml:
        for name in dir(pynvml):
            if name.startswith("nvml") and callable(getattr(pynvml, name)) and not isinstance(
                    getattr(pynvml, name), type):
                monkeypatch.setattr(pynvml, name, getattr(self, name, self._unexpected(name)))
        return self

    @staticmethod
    def _unexpected(name):
        def stub(*args, **kwargs):
            raise AssertionError(f"the exporter called {name}, which the fake NVML does not implement")
        return stub

    # -- handles: opaque ctypes pointers, as pynvml's ---------------------------------------
    def handle(self, thing, kind=pynvml.c_nvmlDevice_t):
        """The same handle (address) for the same GPU, MIG device or GPU instance every time."""
        parts = (thing.parent, thing.mig) if isinstance(thing, _MigDevice | _GpuInstance) else (thing,)
        key = (kind, type(thing), *map(id, parts))  # _objects keeps the parts alive, so ids stay theirs
        address = self._addresses.get(key)
        if address is None:
            address = self._addresses[key] = next(self._next_address)
            self._objects[address] = thing
        return ctypes.cast(address, kind)

    def gpu_of(self, handle) -> FakeGpu:
        """The GPU behind a GPU, MIG device or GPU instance handle."""
        thing = self._objects[_address(handle)]
        return thing if isinstance(thing, FakeGpu) else thing.parent

    def _gpu(self, handle, function: str) -> FakeGpu:
        gpu = self.gpu_of(handle)
        if gpu.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if function in gpu.fail:
            failure = gpu.fail[function]
            raise failure if isinstance(failure, BaseException) else pynvml.NVMLError(failure)
        return gpu

    def _mig(self, handle, function: str) -> _MigDevice | _GpuInstance:
        self._gpu(handle, function)
        return self._objects[_address(handle)]

    @staticmethod
    def _unsupported():
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    # -- system ----------------------------------------------------------------------------
    def nvmlInit(self):
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.handle(self._gpu(self.handle(self.gpus[index]), "nvmlDeviceGetHandleByIndex"))

    def nvmlDeviceGetIndex(self, handle):
        return self.gpu_of(handle).index

    # -- identity --------------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        thing = self._objects[_address(handle)]
        return gpu.mig_uuid(thing.mig.gi_id) if isinstance(thing, _MigDevice) else gpu.uuid

    def nvmlDeviceGetPciInfo(self, handle):
        info = pynvml.nvmlPciInfo_t()
        info.busId = self._gpu(handle, "nvmlDeviceGetPciInfo").bus_id.encode()
        return info

    def nvmlDeviceGetName(self, handle):
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetSerial(self, handle):
        return f"13200000{self._gpu(handle, 'nvmlDeviceGetSerial').index:05d}"

    def nvmlDeviceGetVbiosVersion(self, handle):
        self._gpu(handle, "nvmlDeviceGetVbiosVersion")
        return "92.00.45.00.06"

    # -- readings --------------------------------------------------------------------------
    def nvmlDeviceGetClockInfo(self, handle, type):
        self._gpu(handle, "nvmlDeviceGetClockInfo")
        return 1410 if type == pynvml.NVML_CLOCK_SM else 1593

    def nvmlDeviceGetTemperatureV(self, handle, sensor, version=pynvml.nvmlTemperature_v1):
        return self._gpu(handle, "nvmlDeviceGetTemperatureV").temp

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return self._gpu(handle, "nvmlDeviceGetTemperature").temp

    def nvmlDeviceGetTemperatureThreshold(self, handle, threshold):
        gpu = self._gpu(handle, "nvmlDeviceGetTemperatureThreshold")
        value = gpu.max_op if threshold == pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX else gpu.mem_max_op
        if value is None:
            raise self._unsupported()
        return value

    def nvmlDeviceGetMarginTemperature(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetMarginTemperature")
        if gpu.margin is None:
            raise self._unsupported()
        return gpu.margin

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        return self._gpu(handle, "nvmlDeviceGetPowerManagementLimit").limit_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").enforced_mw

    def nvmlDeviceGetPcieReplayCounter(self, handle):
        self._gpu(handle, "nvmlDeviceGetPcieReplayCounter")
        return 0

    def nvmlDeviceGetPcieThroughput(self, device, counter):
        self._gpu(device, "nvmlDeviceGetPcieThroughput")
        return 1000 if counter == pynvml.NVML_PCIE_UTIL_TX_BYTES else 2000

    def nvmlDeviceGetUtilizationRates(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        if gpu.mig:
            raise self._unsupported()
        return pynvml.c_nvmlUtilization_t(gpu=70, memory=30)

    def nvmlDeviceGetEncoderUtilization(self, handle):
        self._gpu(handle, "nvmlDeviceGetEncoderUtilization")
        return [0, 167000]

    def nvmlDeviceGetDecoderUtilization(self, handle):
        self._gpu(handle, "nvmlDeviceGetDecoderUtilization")
        return [0, 167000]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").reasons

    def nvmlDeviceGetTotalEccErrors(self, handle, errorType, counterType):
        return self._gpu(handle, "nvmlDeviceGetTotalEccErrors").ecc[(errorType, counterType)]

    def nvmlDeviceGetRetiredPages(self, device, sourceFilter):
        gpu = self._gpu(device, "nvmlDeviceGetRetiredPages")
        if gpu.retired is None:
            raise self._unsupported()
        return list(range(gpu.retired.get(sourceFilter, 0)))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, device):
        gpu = self._gpu(device, "nvmlDeviceGetRetiredPagesPendingStatus")
        if gpu.retired is None:
            raise self._unsupported()
        return gpu.retired.get("pending", 0)

    def nvmlDeviceGetRemappedRows(self, device):
        gpu = self._gpu(device, "nvmlDeviceGetRemappedRows")
        if gpu.mig or gpu.retired is not None:
            raise self._unsupported()
        return tuple(gpu.remapped)

    def nvmlDeviceGetFieldValues(self, handle, fieldIds):
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        values = (pynvml.c_nvmlFieldValue_t * len(fieldIds))()
        for entry, field_id in zip(values, fieldIds, strict=True):
            entry.fieldId, entry.scopeId = field_id if isinstance(field_id, tuple) else (field_id, 0)
            if entry.fieldId == pynvml.NVML_FI_DEV_MEMORY_TEMP:
                value, entry.valueType = gpu.memory_temp, pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            elif entry.fieldId == pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION:
                value, entry.valueType = gpu.recovery_action, pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            else:
                value = gpu.nvlink_data_kib if entry.fieldId in _NVLINK_DATA else gpu.nvlink_errors.get(entry.fieldId)
                entry.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
            if value is None:
                entry.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            else:
                entry.nvmlReturn = pynvml.NVML_SUCCESS
                entry.value.ullVal = value
        return values

    def nvmlDeviceGetGridLicensableFeatures(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetGridLicensableFeatures")
        if gpu.vgpu_licensed is None:
            raise self._unsupported()
        features = pynvml.c_nvmlGridLicensableFeatures_v4_t()
        features.isGridLicenseSupported = 1
        features.licensableFeaturesCount = 1
        features.gridLicensableFeatures[0].featureCode = pynvml.NVML_GRID_LICENSE_FEATURE_CODE_VGPU
        features.gridLicensableFeatures[0].featureState = gpu.vgpu_licensed
        return features

    def nvmlDeviceGetPerformanceState(self, handle):
        self._gpu(handle, "nvmlDeviceGetPerformanceState")
        return 0

    def nvmlDeviceGetFanSpeed(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetFanSpeed")
        if gpu.fan is None:
            raise self._unsupported()
        return gpu.fan

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        thing = self._objects[_address(handle)]
        if isinstance(thing, _MigDevice):
            total, used, reserved = gpu.profile(thing.mig.profile).memory_mb, thing.mig.used_mib, 0
        else:
            total, used, reserved = gpu.memory_total_mib, gpu.memory_used_mib, gpu.memory_reserved_mib
        if not version:
            return pynvml.c_nvmlMemory_t(total=total * MIB, free=(total - used) * MIB, used=used * MIB)
        return pynvml.c_nvmlMemory_v2_t(version=version, total=total * MIB, reserved=reserved * MIB,
                                        free=(total - used - reserved) * MIB, used=used * MIB)

    # -- MIG -------------------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, device):
        gpu = self._gpu(device, "nvmlDeviceGetMigMode")
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, device):
        return 7 if self._gpu(device, "nvmlDeviceGetMaxMigDeviceCount").mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device, index):
        gpu = self._gpu(device, "nvmlDeviceGetMigDeviceHandleByIndex")
        # Sparse slots, as on real GPUs: every other slot is empty.
        if index % 2 or index // 2 >= len(gpu.mig):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return self.handle(_MigDevice(gpu, gpu.mig[index // 2]))

    def nvmlDeviceGetGpuInstanceId(self, device):
        return self._mig(device, "nvmlDeviceGetGpuInstanceId").mig.gi_id

    def nvmlDeviceGetAttributes_v2(self, device):
        mig = self._mig(device, "nvmlDeviceGetAttributes_v2")
        profile = mig.parent.profile(mig.mig.profile)
        return pynvml.c_nvmlDeviceAttributes(
            multiprocessorCount=14 * profile.slices, sharedDecoderCount=profile.decoders,
            sharedJpegCount=profile.jpeg, sharedOfaCount=profile.ofa, gpuInstanceSliceCount=profile.slices,
            computeInstanceSliceCount=profile.slices, memorySizeMB=profile.memory_mb)

    def nvmlDeviceGetGpuInstanceProfileInfo(self, device, profile, version=2):
        gpu = self._gpu(device, "nvmlDeviceGetGpuInstanceProfileInfo")
        found = next((p for p in gpu.mig_profiles if p.index == profile), None)
        if found is None:
            raise self._unsupported()
        info = pynvml.c_nvmlGpuInstanceProfileInfo_v2_t() if version == 2 else pynvml.c_nvmlGpuInstanceProfileInfo_t()
        info.id, info.sliceCount, info.instanceCount = found.id, found.slices, 7 // found.slices
        info.multiprocessorCount, info.memorySizeMB = 14 * found.slices, found.memory_mb
        info.decoderCount, info.jpegCount, info.ofaCount = found.decoders, found.jpeg, found.ofa
        if version == 2:
            info.name = found.name.encode()
        return info

    def nvmlDeviceGetGpuInstanceById(self, device, gpuInstanceId):
        gpu = self._gpu(device, "nvmlDeviceGetGpuInstanceById")
        mig = next((m for m in gpu.mig if m.gi_id == gpuInstanceId), None)
        if mig is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return self.handle(_GpuInstance(gpu, mig), pynvml.c_nvmlGpuInstance_t)

    def nvmlGpuInstanceGetInfo(self, gpuInstance):
        instance = self._mig(gpuInstance, "nvmlGpuInstanceGetInfo")
        info = pynvml.c_nvmlGpuInstanceInfo_t()
        info.device = self.handle(instance.parent)
        info.id = instance.mig.gi_id
        info.profileId = instance.parent.profile(instance.mig.profile).id
        return info

    # -- GPM -------------------------------------------------------------------------------
    def nvmlGpmQueryDeviceSupport(self, device):
        gpu = self._gpu(device, "nvmlGpmQueryDeviceSupport")
        return pynvml.c_nvmlGpmSupport_t(version=pynvml.NVML_GPM_SUPPORT_VERSION, isSupportedDevice=int(gpu.gpm))

    def nvmlGpmSampleAlloc(self):
        address = next(self._sample_ids)
        with self._lock:
            self.live_samples[address] = None
        return ctypes.cast(address, pynvml.c_nvmlGpmSample_t)

    def nvmlGpmSampleGet(self, device, gpmSample):
        gpu = self._gpu(device, "nvmlGpmSampleGet")
        self.live_samples[_address(gpmSample)] = (gpu.index, None)
        return gpmSample

    def nvmlGpmMigSampleGet(self, device, gpuInstanceId, gpmSample):
        gpu = self._gpu(device, "nvmlGpmMigSampleGet")
        self.live_samples[_address(gpmSample)] = (gpu.index, gpuInstanceId)
        return gpmSample

    def nvmlGpmMetricsGet(self, metricsGet):
        index, gi_id = self.live_samples[_address(metricsGet.sample2)]
        assert self.live_samples[_address(metricsGet.sample1)] == (index, gi_id), "samples of two sources"
        gpu = self.gpus[index]
        for i in range(metricsGet.numMetrics):
            metric = metricsGet.metrics[i]
            value = gpu.gpm_values.get(metric.metricId)
            metric.nvmlReturn = pynvml.NVML_SUCCESS if value is not None else pynvml.NVML_ERROR_NOT_SUPPORTED
            metric.value = (value or 0) / (2 if gi_id else 1)
        return metricsGet

    def nvmlGpmSampleFree(self, gpmSample):
        with self._lock:
            del self.live_samples[_address(gpmSample)]

    # -- processes -------------------------------------------------------------------------
    def _processes(self, handle, function: str, graphics: bool) -> list:
        listed = []
        for process in self._gpu(handle, function).processes:
            if process.graphics != graphics:
                continue
            info = pynvml.c_nvmlProcessInfo_v3_t(pid=process.pid, usedGpuMemory=(process.memory_mib or 0) * MIB,
                                                 gpuInstanceId=0xFFFFFFFF if process.gi_id is None else process.gi_id,
                                                 computeInstanceId=0xFFFFFFFF if process.gi_id is None else 0)
            friendly = _FRIENDLY(info)
            if process.memory_mib is None:
                friendly.usedGpuMemory = None  # as pynvml turns NVML_VALUE_NOT_AVAILABLE
            listed.append(friendly)
        return listed

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle):
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v3", graphics=False)

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle):
        return self._processes(handle, "nvmlDeviceGetGraphicsRunningProcesses_v3", graphics=True)

    def nvmlDeviceGetProcessUtilization(self, handle, timeStamp):
        """Samples stamped `utilization_time`, newer than `timeStamp` only; NotFound when none is."""
        gpu = self._gpu(handle, "nvmlDeviceGetProcessUtilization")
        if gpu.mig:
            raise self._unsupported()
        samples = [pynvml.c_nvmlProcessUtilizationSample_t(pid=p.pid, timeStamp=self.utilization_time, smUtil=p.sm)
                   for p in gpu.processes if p.sm is not None and self.utilization_time > timeStamp]
        if not samples:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return samples

    def nvmlSystemGetProcessName(self, pid):
        process = next((p for g in self.gpus for p in g.processes if p.pid == pid), None)
        if process is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        if process.name is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
        return process.name

    # -- events ----------------------------------------------------------------------------
    def nvmlEventSetCreate(self):
        return self.handle(self.events, pynvml.c_nvmlEventSet_t)

    def nvmlDeviceRegisterEvents(self, handle, eventTypes, eventSet):
        self._gpu(handle, "nvmlDeviceRegisterEvents")

    def nvmlEventSetWait_v2(self, eventSet, timeoutms):
        try:
            return self.events.get(timeout=timeoutms / 1000)
        except queue.Empty:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT) from None

    def nvmlEventSetFree(self, eventSet):
        pass
