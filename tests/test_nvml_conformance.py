"""The exporter and the fake NVML against the installed pynvml (CI runs this at the newest
nvidia-ml-py and at pyproject's floor): every pynvml name the exporter uses exists; every fake
function has the real one's parameters and returns what the real one returns.

Real return shapes come from pynvml's own wrappers run against a stand-in for libnvidia-ml whose
functions all succeed and write nothing: the wrappers then return their real types, zeroed.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import re
from types import SimpleNamespace

import pynvml
import pytest
from nvml_fake import FakeGpu, FakeMig, FakeNvml, FakeProcess

from conftest import ROOT

_NVML_NAME = re.compile(r"^nvml[A-Z]\w*$")


def exporter_names() -> set[str]:
    """pynvml attributes the exporter's modules read (`pynvml.X`), and function names they look
    up by string (`getattr(pynvml, "nvmlDeviceGet...")`)."""
    names = set()
    for path in sorted((ROOT / "exporters").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pynvml":
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _NVML_NAME.match(node.value):
                names.add(node.value)
    return names


def fake_functions() -> list[str]:
    return sorted(name for name in dir(FakeNvml) if _NVML_NAME.match(name))


def test_every_pynvml_name_the_exporter_uses_exists():
    names = exporter_names()
    assert {"nvmlDeviceGetPowerManagementLimit", "nvmlDeviceGetMemoryInfo", "NVMLError_GpuIsLost"} <= names
    missing = sorted(name for name in names if not hasattr(pynvml, name))
    assert missing == [], f"pynvml {getattr(pynvml, '__version__', '')} lacks these"


def test_every_nvml_function_the_exporter_calls_is_faked():
    called = {n for n in exporter_names() if _NVML_NAME.match(n) and inspect.isfunction(getattr(pynvml, n, None))}
    assert called - set(fake_functions()) == set()


def _parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default is inspect.Parameter.empty)
            for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", fake_functions())
def test_fake_functions_have_pynvml_signatures(name):
    real = getattr(pynvml, name, None)
    assert inspect.isfunction(real), f"pynvml has no function {name}"
    assert _parameters(getattr(FakeNvml([]), name)) == _parameters(real)


class _Library:
    """libnvidia-ml where every function succeeds and writes nothing, except that a call asking how
    many entries there are (a process list, utilization samples: no buffer given) is told one, so
    that the wrapper's second call returns entries of their real type."""

    SIZED = ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v3",
             "nvmlDeviceGetProcessUtilization")

    def __getattr__(self, name):
        return _sized if name in self.SIZED else lambda *args: pynvml.NVML_SUCCESS


def _sized(*args):
    if any(arg is None for arg in args):
        count = next(arg._obj for arg in args if type(arg).__name__ == "CArgObject")  # byref(c_uint)
        count.value = 1
        return pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    return pynvml.NVML_SUCCESS


def _fake_side() -> tuple[FakeNvml, SimpleNamespace]:
    gpus = [FakeGpu(0, margin=20, fan=50, vgpu_licensed=1, gpm=True,
                    processes=[FakeProcess(100, sm=30), FakeProcess(101, graphics=True)]),
            FakeGpu(1, name="Tesla V100-SXM2-32GB", retired={0: 2, 1: 0, "pending": 1}),
            FakeGpu(2, mig=[FakeMig(1, "1g.10gb+me")])]
    fake = FakeNvml(gpus)
    gpu, volta, mig_gpu = (fake.handle(g) for g in gpus)
    first, second = fake.nvmlGpmSampleAlloc(), fake.nvmlGpmSampleAlloc()
    fake.nvmlGpmSampleGet(gpu, first)
    fake.nvmlGpmSampleGet(gpu, second)
    fake.xid(0, 31)
    side = SimpleNamespace(gpu=gpu, volta=volta, mig_gpu=mig_gpu,
                           mig=fake.nvmlDeviceGetMigDeviceHandleByIndex(mig_gpu, 0),
                           instance=fake.nvmlDeviceGetGpuInstanceById(mig_gpu, 1),
                           event_set=fake.nvmlEventSetCreate(), sample=fake.nvmlGpmSampleAlloc(),
                           request=_metrics_request(first, second))
    return fake, side


def _real_side() -> SimpleNamespace:
    device = pynvml.c_nvmlDevice_t()
    sample = pynvml.c_nvmlGpmSample_t()
    return SimpleNamespace(gpu=device, volta=device, mig_gpu=device, mig=device, instance=pynvml.c_nvmlGpuInstance_t(),
                           event_set=pynvml.c_nvmlEventSet_t(), sample=sample, request=_metrics_request(sample, sample))


def _metrics_request(first, second):
    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = 1
    request.sample1, request.sample2 = first, second
    request.metrics[0].metricId = pynvml.NVML_GPM_METRIC_GRAPHICS_UTIL
    return request


def _gpu(*extra):
    return lambda s: ((s.gpu, *extra), {})


# Each fake function's calls as (args, kwargs) from the handles of one side.
CALLS = {
    "nvmlInit": [lambda s: ((), {})],
    "nvmlShutdown": [lambda s: ((), {})],
    "nvmlSystemGetDriverVersion": [lambda s: ((), {})],
    "nvmlDeviceGetCount": [lambda s: ((), {})],
    "nvmlDeviceGetHandleByIndex": [lambda s: ((0,), {})],
    "nvmlDeviceGetIndex": [_gpu()],
    "nvmlDeviceGetUUID": [_gpu(), lambda s: ((s.mig,), {})],
    "nvmlDeviceGetPciInfo": [_gpu()],
    "nvmlDeviceGetName": [_gpu()],
    "nvmlDeviceGetSerial": [_gpu()],
    "nvmlDeviceGetVbiosVersion": [_gpu()],
    "nvmlDeviceGetClockInfo": [_gpu(pynvml.NVML_CLOCK_SM)],
    "nvmlDeviceGetTemperatureV": [_gpu(pynvml.NVML_TEMPERATURE_GPU)],
    "nvmlDeviceGetTemperature": [_gpu(pynvml.NVML_TEMPERATURE_GPU)],
    "nvmlDeviceGetTemperatureThreshold": [_gpu(pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX)],
    "nvmlDeviceGetMarginTemperature": [_gpu()],
    "nvmlDeviceGetPowerUsage": [_gpu()],
    "nvmlDeviceGetTotalEnergyConsumption": [_gpu()],
    "nvmlDeviceGetPowerManagementLimit": [_gpu()],
    "nvmlDeviceGetEnforcedPowerLimit": [_gpu()],
    "nvmlDeviceGetPcieReplayCounter": [_gpu()],
    "nvmlDeviceGetPcieThroughput": [_gpu(pynvml.NVML_PCIE_UTIL_TX_BYTES)],
    "nvmlDeviceGetUtilizationRates": [_gpu()],
    "nvmlDeviceGetEncoderUtilization": [_gpu()],
    "nvmlDeviceGetDecoderUtilization": [_gpu()],
    "nvmlDeviceGetCurrentClocksEventReasons": [_gpu()],
    "nvmlDeviceGetCurrentClocksThrottleReasons": [_gpu()],
    "nvmlDeviceGetTotalEccErrors": [_gpu(pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC)],
    "nvmlDeviceGetRetiredPages": [
        lambda s: ((s.volta, pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS), {})],
    "nvmlDeviceGetRetiredPagesPendingStatus": [lambda s: ((s.volta,), {})],
    "nvmlDeviceGetRemappedRows": [_gpu()],
    "nvmlDeviceGetFieldValues": [_gpu([pynvml.NVML_FI_DEV_MEMORY_TEMP]),
                                 _gpu([(pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, 0xFFFFFFFF)])],
    "nvmlDeviceGetGridLicensableFeatures": [_gpu()],
    "nvmlDeviceGetPerformanceState": [_gpu()],
    "nvmlDeviceGetFanSpeed": [_gpu()],
    "nvmlDeviceGetMemoryInfo": [_gpu(), lambda s: ((s.gpu,), {"version": pynvml.nvmlMemory_v2}),
                                lambda s: ((s.mig,), {"version": pynvml.nvmlMemory_v2})],
    "nvmlDeviceGetMigMode": [lambda s: ((s.mig_gpu,), {})],
    "nvmlDeviceGetMaxMigDeviceCount": [lambda s: ((s.mig_gpu,), {})],
    "nvmlDeviceGetMigDeviceHandleByIndex": [lambda s: ((s.mig_gpu, 0), {})],
    "nvmlDeviceGetGpuInstanceId": [lambda s: ((s.mig,), {})],
    "nvmlDeviceGetAttributes_v2": [lambda s: ((s.mig,), {})],
    "nvmlDeviceGetGpuInstanceProfileInfo": [
        lambda s: ((s.mig_gpu, pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 2), {}),
        lambda s: ((s.mig_gpu, pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE), {"version": 1})],
    "nvmlDeviceGetGpuInstanceById": [lambda s: ((s.mig_gpu, 1), {})],
    "nvmlGpuInstanceGetInfo": [lambda s: ((s.instance,), {})],
    "nvmlGpmQueryDeviceSupport": [_gpu()],
    "nvmlGpmSampleAlloc": [lambda s: ((), {})],
    "nvmlGpmSampleGet": [lambda s: ((s.gpu, s.sample), {})],
    "nvmlGpmMigSampleGet": [lambda s: ((s.mig_gpu, 1, s.sample), {})],
    "nvmlGpmMetricsGet": [lambda s: ((s.request,), {})],
    "nvmlGpmSampleFree": [lambda s: ((s.sample,), {})],
    "nvmlDeviceGetComputeRunningProcesses_v3": [_gpu()],
    "nvmlDeviceGetGraphicsRunningProcesses_v3": [_gpu()],
    "nvmlDeviceGetProcessUtilization": [_gpu(0)],
    "nvmlSystemGetProcessName": [lambda s: ((100,), {})],
    "nvmlEventSetCreate": [lambda s: ((), {})],
    "nvmlDeviceRegisterEvents": [lambda s: ((s.gpu, pynvml.nvmlEventTypeXidCriticalError, s.event_set), {})],
    "nvmlEventSetWait_v2": [lambda s: ((s.event_set, 10), {})],
    "nvmlEventSetFree": [lambda s: ((s.event_set,), {})],
}


def test_every_fake_function_has_its_calls_here():
    assert set(CALLS) == set(fake_functions())


def _same_shape(fake, real, where: str) -> None:
    """The fake's value has what a caller of the real one may rely on: the same ctypes class for
    structures and handles (so the same fields, with bytes in char arrays), arrays of the same
    element type, str vs bytes vs int, and the same shape inside lists and tuples."""
    if isinstance(real, ctypes.Array):
        assert isinstance(fake, ctypes.Array) and fake._type_ is real._type_, where
    elif isinstance(real, ctypes.Structure | ctypes.Union | ctypes._Pointer):
        assert type(fake) is type(real), f"{where}: {type(fake).__name__}, not {type(real).__name__}"
    elif isinstance(real, list | tuple):
        # pynvml's tuples are records (remapped rows); its lists may be of any length (retired pages).
        assert type(fake) is type(real), f"{where}: {type(fake).__name__}, not {type(real).__name__}"
        assert len(fake) == len(real) if isinstance(real, tuple) else bool(fake) or not real, where
        for i, item in enumerate(fake):
            _same_shape(item, real[min(i, len(real) - 1)], f"{where}[{i}]")
    else:
        assert type(fake) is type(real), f"{where}: {type(fake).__name__}, not {type(real).__name__}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_fake_functions_return_pynvml_shapes(name, monkeypatch):
    fake, fake_side = _fake_side()
    monkeypatch.setattr(pynvml, "nvmlLib", _Library())
    monkeypatch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
    monkeypatch.setattr(pynvml, "_nvmlLib_refcount", 0)
    real_side = _real_side()
    for i, call in enumerate(CALLS[name]):
        args, kwargs = call(fake_side)
        fake_value = getattr(fake, name)(*args, **kwargs)
        args, kwargs = call(real_side)
        real_value = getattr(pynvml, name)(*args, **kwargs)
        _same_shape(fake_value, real_value, f"{name} call {i}")


def test_the_stand_in_library_gives_pynvml_shapes():
    """The comparison above means something: the real wrappers return structures, str, lists."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pynvml, "nvmlLib", _Library())
        patch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
        device = pynvml.c_nvmlDevice_t()
        assert isinstance(pynvml.nvmlDeviceGetName(device), str)
        assert isinstance(pynvml.nvmlDeviceGetUtilizationRates(device), ctypes.Structure)
        assert isinstance(pynvml.nvmlDeviceGetRemappedRows(device), tuple)
        assert isinstance(pynvml.nvmlDeviceGetFieldValues(device, [pynvml.NVML_FI_DEV_MEMORY_TEMP]), ctypes.Array)
        assert isinstance(pynvml.nvmlDeviceGetRetiredPages(device, 0), list)
