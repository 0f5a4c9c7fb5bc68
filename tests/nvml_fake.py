"""A fake NVML for tests without a GPU: the real pynvml module with its functions replaced.

Every `nvml*` function of pynvml is swapped for a stub (unknown ones fail the test when called),
so the exporter runs its real code paths, error classes and constants against scripted GPUs.
"""

from __future__ import annotations

import ctypes
import itertools
import queue
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

MIB = 1048576
_NVLINK_DATA = (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX)


@dataclass
class FakeMig:
    gi_id: int
    slices: int
    memory_mb: int
    used_mib: int = 1000


@dataclass
class FakeGpu:
    index: int
    name: str = "NVIDIA A100-SXM4-80GB"
    temp: int = 45
    memory_temp: int = 50
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
    retired: dict | None = None  # cause -> pages: Volta; None: NotSupported (Ampere remaps rows)
    nvlink_errors: dict = field(default_factory=lambda: {38: 0, 45: 0, 52: 0, 59: 0})
    nvlink_data_kib: int = 0
    memory_total_mib: int = 81920
    memory_used_mib: int = 20000
    memory_reserved_mib: int = 500
    fan: int | None = None
    vgpu_licensed: int | None = None  # None: not a vGPU guest (NotSupported)
    gpm: bool = False
    gpm_values: dict = field(default_factory=lambda: {1: 50.0, 5: 25.0, 10: 40.0, 20: 100.0, 21: 200.0})
    mig: list[FakeMig] = field(default_factory=list)
    lost: bool = False
    fail: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code

    @property
    def uuid(self) -> str:
        return f"GPU-{self.index:08x}-fake-0000-0000-000000000000"

    @property
    def bus_id(self) -> str:
        return f"00000000:{0x10 + self.index:02X}:00.0"


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu], driver: str = "550.54.15", init_error: int | None = None):
        self.gpus = gpus
        self.driver = driver
        self.init_error = init_error
        self.events: queue.Queue = queue.Queue()
        self.live_samples: dict[int, tuple] = {}
        self._sample_ids = itertools.count(0x1000, 0x10)
        self._lock = threading.Lock()
        self.calls: list[str] = []

    # -- scripting -----------------------------------------------------------------------
    def xid(self, index: int, code: int) -> None:
        self.events.put(SimpleNamespace(device=self.gpus[index], eventType=pynvml.nvmlEventTypeXidCriticalError,
                                        eventData=code, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF))

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

    # -- helpers ---------------------------------------------------------------------------
    def _gpu(self, handle, function: str) -> FakeGpu:
        gpu = handle if isinstance(handle, FakeGpu) else handle.parent
        if gpu.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if function in gpu.fail:
            raise pynvml.NVMLError(gpu.fail[function])
        return gpu

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
        return self._gpu(self.gpus[index], "nvmlDeviceGetHandleByIndex")

    def nvmlDeviceGetIndex(self, handle):
        return handle.index

    # -- identity --------------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, h):
        return self._gpu(h, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=self._gpu(h, "nvmlDeviceGetPciInfo").bus_id)

    def nvmlDeviceGetName(self, h):
        return self._gpu(h, "nvmlDeviceGetName").name

    def nvmlDeviceGetSerial(self, h):
        return f"13200000{self._gpu(h, 'nvmlDeviceGetSerial').index:05d}"

    def nvmlDeviceGetVbiosVersion(self, h):
        self._gpu(h, "nvmlDeviceGetVbiosVersion")
        return "92.00.45.00.06"

    # -- readings --------------------------------------------------------------------------
    def nvmlDeviceGetClockInfo(self, h, clock):
        self._gpu(h, "nvmlDeviceGetClockInfo")
        return 1410 if clock == pynvml.NVML_CLOCK_SM else 1593

    def nvmlDeviceGetTemperatureV(self, h, sensor):
        return self._gpu(h, "nvmlDeviceGetTemperatureV").temp

    def nvmlDeviceGetTemperatureThreshold(self, h, threshold):
        gpu = self._gpu(h, "nvmlDeviceGetTemperatureThreshold")
        value = gpu.max_op if threshold == pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX else gpu.mem_max_op
        if value is None:
            raise self._unsupported()
        return value

    def nvmlDeviceGetMarginTemperature(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetMarginTemperature")
        if gpu.margin is None:
            raise self._unsupported()
        return gpu.margin

    def nvmlDeviceGetPowerUsage(self, h):
        return self._gpu(h, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self._gpu(h, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return self._gpu(h, "nvmlDeviceGetPowerManagementLimit").limit_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._gpu(h, "nvmlDeviceGetEnforcedPowerLimit").enforced_mw

    def nvmlDeviceGetPcieReplayCounter(self, h):
        self._gpu(h, "nvmlDeviceGetPcieReplayCounter")
        return 0

    def nvmlDeviceGetPcieThroughput(self, h, counter):
        self._gpu(h, "nvmlDeviceGetPcieThroughput")
        return 1000 if counter == pynvml.NVML_PCIE_UTIL_TX_BYTES else 2000

    def nvmlDeviceGetUtilizationRates(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetUtilizationRates")
        if gpu.mig:
            raise self._unsupported()
        return SimpleNamespace(gpu=70, memory=30)

    def nvmlDeviceGetEncoderUtilization(self, h):
        self._gpu(h, "nvmlDeviceGetEncoderUtilization")
        return [0, 167000]

    def nvmlDeviceGetDecoderUtilization(self, h):
        self._gpu(h, "nvmlDeviceGetDecoderUtilization")
        return [0, 167000]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._gpu(h, "nvmlDeviceGetCurrentClocksEventReasons").reasons

    def nvmlDeviceGetTotalEccErrors(self, h, error_type, counter_type):
        return self._gpu(h, "nvmlDeviceGetTotalEccErrors").ecc[(error_type, counter_type)]

    def nvmlDeviceGetRetiredPages(self, h, cause):
        gpu = self._gpu(h, "nvmlDeviceGetRetiredPages")
        if gpu.retired is None:
            raise self._unsupported()
        return list(range(gpu.retired.get(cause, 0)))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetRetiredPagesPendingStatus")
        if gpu.retired is None:
            raise self._unsupported()
        return gpu.retired.get("pending", 0)

    def nvmlDeviceGetRemappedRows(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetRemappedRows")
        if gpu.mig or gpu.retired is not None:
            raise self._unsupported()
        return gpu.remapped

    def nvmlDeviceGetFieldValues(self, h, ids):
        gpu = self._gpu(h, "nvmlDeviceGetFieldValues")
        values = []
        for entry in ids:
            field_id = entry[0] if isinstance(entry, tuple) else entry
            if field_id == pynvml.NVML_FI_DEV_MEMORY_TEMP:
                value = gpu.memory_temp
            elif field_id in gpu.nvlink_errors:
                value = gpu.nvlink_errors[field_id]
            elif field_id in _NVLINK_DATA:
                value = gpu.nvlink_data_kib
            else:
                value = None
            values.append(SimpleNamespace(
                nvmlReturn=pynvml.NVML_SUCCESS if value is not None else pynvml.NVML_ERROR_NOT_SUPPORTED,
                value=SimpleNamespace(uiVal=value, ullVal=value)))
        return values

    def nvmlDeviceGetGridLicensableFeatures(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetGridLicensableFeatures")
        if gpu.vgpu_licensed is None:
            raise self._unsupported()
        feature = SimpleNamespace(featureCode=pynvml.NVML_GRID_LICENSE_FEATURE_CODE_VGPU,
                                  featureState=gpu.vgpu_licensed)
        return SimpleNamespace(isGridLicenseSupported=1, licensableFeaturesCount=1, gridLicensableFeatures=[feature])

    def nvmlDeviceGetPerformanceState(self, h):
        self._gpu(h, "nvmlDeviceGetPerformanceState")
        return 0

    def nvmlDeviceGetFanSpeed(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetFanSpeed")
        if gpu.fan is None:
            raise self._unsupported()
        return gpu.fan

    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        gpu = self._gpu(h, "nvmlDeviceGetMemoryInfo")
        if isinstance(h, FakeGpu):
            total, used, reserved = gpu.memory_total_mib, gpu.memory_used_mib, gpu.memory_reserved_mib
        else:
            total, used, reserved = h.memory_mb, h.used_mib, 0
        return SimpleNamespace(total=total * MIB, used=used * MIB, reserved=reserved * MIB,
                               free=(total - used - reserved) * MIB)

    # -- MIG -------------------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, h):
        gpu = self._gpu(h, "nvmlDeviceGetMigMode")
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7 if self._gpu(h, "nvmlDeviceGetMaxMigDeviceCount").mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, index):
        gpu = self._gpu(h, "nvmlDeviceGetMigDeviceHandleByIndex")
        # Sparse slots, as on real GPUs: every other slot is empty.
        if index % 2 or index // 2 >= len(gpu.mig):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        mig = gpu.mig[index // 2]
        return SimpleNamespace(parent=gpu, gi_id=mig.gi_id, memory_mb=mig.memory_mb, used_mib=mig.used_mib,
                               slices=mig.slices)

    def nvmlDeviceGetGpuInstanceId(self, m):
        self._gpu(m, "nvmlDeviceGetGpuInstanceId")
        return m.gi_id

    def nvmlDeviceGetAttributes_v2(self, m):
        self._gpu(m, "nvmlDeviceGetAttributes_v2")
        return SimpleNamespace(gpuInstanceSliceCount=m.slices, memorySizeMB=m.memory_mb)

    # -- GPM -------------------------------------------------------------------------------
    def nvmlGpmQueryDeviceSupport(self, h):
        return SimpleNamespace(isSupportedDevice=int(self._gpu(h, "nvmlGpmQueryDeviceSupport").gpm))

    def nvmlGpmSampleAlloc(self):
        address = next(self._sample_ids)
        with self._lock:
            self.live_samples[address] = None
        return ctypes.cast(address, pynvml.c_nvmlGpmSample_t)

    @staticmethod
    def _address(sample) -> int:
        return ctypes.cast(sample, ctypes.c_void_p).value

    def nvmlGpmSampleGet(self, h, sample):
        gpu = self._gpu(h, "nvmlGpmSampleGet")
        self.live_samples[self._address(sample)] = (gpu.index, None)
        return sample

    def nvmlGpmMigSampleGet(self, h, gi_id, sample):
        gpu = self._gpu(h, "nvmlGpmMigSampleGet")
        self.live_samples[self._address(sample)] = (gpu.index, gi_id)
        return sample

    def nvmlGpmMetricsGet(self, request):
        index, gi_id = self.live_samples[self._address(request.sample2)]
        assert self.live_samples[self._address(request.sample1)] == (index, gi_id), "samples of two sources"
        gpu = self.gpus[index]
        for i in range(request.numMetrics):
            metric = request.metrics[i]
            value = gpu.gpm_values.get(metric.metricId)
            metric.nvmlReturn = pynvml.NVML_SUCCESS if value is not None else pynvml.NVML_ERROR_NOT_SUPPORTED
            metric.value = (value or 0) / (2 if gi_id else 1)
        return request

    def nvmlGpmSampleFree(self, sample):
        with self._lock:
            del self.live_samples[self._address(sample)]

    # -- events ----------------------------------------------------------------------------
    def nvmlEventSetCreate(self):
        return object()

    def nvmlDeviceRegisterEvents(self, h, event_types, event_set):
        self._gpu(h, "nvmlDeviceRegisterEvents")

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        try:
            return self.events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT) from None

    def nvmlEventSetFree(self, event_set):
        pass
