"""Interconnect alerts: NVLink and PCIe errors rising."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.promtool_cases import STEP, flat
from gpuobs.series import NVLINK_ERROR_KINDS, NVLINK_ERRORS, increase_past, recorded_past

PANEL = (links.GPU_DETAIL, links.INTERCONNECT_PANEL)


def _nvlink_cases(b, alert, gpu, t):
    n = b.n
    labels = b.gpu_labels(b.host_of(gpu))
    if not gpu.nvlink_links:
        return []
    end = b.counter_end(alert) + STEP
    served = [getattr(n, key) for key, _ in NVLINK_ERROR_KINDS if n.serves(key)]
    steady = [(name, labels, flat(3, end)) for name in served[1:2]]
    return b.counter_alert(alert, f"{n.exporter.job} {gpu.key}", served[0], labels, t.nvlink_errors_warning,
                           extra_series=steady)


def _pcie_cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    return b.counter_alert(alert, f"{b.n.exporter.job} {gpu.key}", b.n.pcie_replay, labels, t.pcie_replay_warning)


ALERTS = (
    AlertDef("GPUNVLinkErrors", "interconnect", "warning", "notify", "5m",
             "NVLink errors rising",
             f"{GPU_TEXT} logged {VALUE_TEXT} NVLink CRC, replay or recovery errors in the last 5 minutes.",
             panel=PANEL, proof=Proof((("nvlink-errors", {}),)), needs=(tuple(k for k, _ in NVLINK_ERROR_KINDS),),
             applies_to="nvlink", expression=lambda d, model, ns: recorded_past(
                 model, NVLINK_ERRORS, ">", "nvlink_errors_warning"),
             cases=_nvlink_cases),
    AlertDef("GPUPCIeReplayErrors", "interconnect", "warning", "notify", "5m",
             "PCIe replays rising",
             f"{GPU_TEXT} logged {VALUE_TEXT} PCIe replays in the last 5 minutes.",
             panel=PANEL, proof=Proof((("pcie-replay-errors", {}),)), needs=(("pcie_replay",),),
             expression=lambda d, model, ns: increase_past(ns, d, model, "pcie_replay", ">", "pcie_replay_warning"),
             cases=_pcie_cases),
)
