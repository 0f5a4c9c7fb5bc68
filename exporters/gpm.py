"""NVML GPU Performance Monitoring (Hopper and later): the DCGM_FI_PROF_* ratios and PCIe rates.

GPM metrics are differences between two samples taken at least 100 ms apart; the collection
interval is the natural spacing, so each GPU or MIG instance keeps its previous sample and the
first cycle yields nothing. Units follow DCGM: utilizations as 0..1 ratios, PCIe in bytes/s.
"""

from __future__ import annotations

import pynvml

PROF_METRICS = {  # catalog key -> (GPM metric id, scale to DCGM's unit)
    "gr_engine_active": (pynvml.NVML_GPM_METRIC_GRAPHICS_UTIL, 0.01),
    "tensor_active": (pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL, 0.01),
    "dram_active": (pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL, 0.01),
}
PCIE_METRICS = {
    "pcie_tx_bytes": (pynvml.NVML_GPM_METRIC_PCIE_TX_PER_SEC, 1048576),
    "pcie_rx_bytes": (pynvml.NVML_GPM_METRIC_PCIE_RX_PER_SEC, 1048576),
}


def supported(handle) -> bool:
    try:
        return bool(pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound):
        return False


class GpmSampler:
    """Previous samples keyed by (GPU index, GPU instance id or None)."""

    def __init__(self):
        self._previous: dict[tuple, object] = {}

    def read(self, handle, gpu: int, metrics: dict[str, tuple[int, float]],
             instance: int | None = None) -> dict[str, float]:
        """Values of `metrics` since the previous call for this GPU or instance ({} the first time).
        Raises NVMLError when NVML refuses the sample; entries NVML cannot compute are left out."""
        sample = pynvml.nvmlGpmSampleAlloc()
        try:
            if instance is None:
                pynvml.nvmlGpmSampleGet(handle, sample)
            else:
                pynvml.nvmlGpmMigSampleGet(handle, instance, sample)
        except pynvml.NVMLError:
            pynvml.nvmlGpmSampleFree(sample)
            raise
        previous = self._previous.pop((gpu, instance), None)
        self._previous[(gpu, instance)] = sample
        if previous is None:
            return {}
        try:
            request = pynvml.c_nvmlGpmMetricsGet_t()
            request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
            request.numMetrics = len(metrics)
            request.sample1 = previous
            request.sample2 = sample
            for i, (metric_id, _scale) in enumerate(metrics.values()):
                request.metrics[i].metricId = metric_id
            pynvml.nvmlGpmMetricsGet(request)
        finally:
            pynvml.nvmlGpmSampleFree(previous)
        values = {}
        for i, (key, (_metric_id, scale)) in enumerate(metrics.items()):
            entry = request.metrics[i]
            if entry.nvmlReturn == pynvml.NVML_SUCCESS:
                values[key] = entry.value * scale
        return values

    def forget(self, gpu: int, keep: set | frozenset = frozenset()) -> None:
        """Frees a GPU's samples (comparing across a loss would be meaningless), except those of
        the instances in `keep`: MIG instances come and go with reconfiguration."""
        for key in [k for k in self._previous if k[0] == gpu and k[1] not in keep]:
            try:
                pynvml.nvmlGpmSampleFree(self._previous.pop(key))
            except pynvml.NVMLError:
                pass  # freeing host memory of a lost GPU's sample; nothing left to do
