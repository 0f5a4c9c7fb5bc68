"""The alert catalog: what each alert means, its defaults and its annotations.

Expressions are built in generators/rules.py; this module holds only what a spec can
override (severity, `for`, extra labels, enabled) and what routing and tests need to know.
Annotation templates use a deliberately small subset of Prometheus' template language
(`{{ $labels.NAME }}` and `{{ printf "%.1f" $value }}`) so generated tests can compute the
exact expected text (see render_annotation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEVERITIES = ("critical", "warning", "info")
ACTIONS = ("notify", "throttle", "preempt", "drain", "reset", "quarantine")


@dataclass(frozen=True)
class AlertDef:
    name: str
    family: str  # critical inhibits warning within one family on one GPU
    severity: str
    action: str
    for_: str
    summary: str
    description: str
    scope: str = "gpu"  # gpu: one alert per GPU; host: one per host
    xid_codes: tuple[int, ...] = ()
    # The exporter signals the alert reads: each entry is one signal, served by any of its
    # logical metrics. A GPU lacking one cannot raise the alert, and GPUAlertBlind says so.
    needs: tuple[tuple[str, ...], ...] = ()
    # Which GPU models the alert concerns: all, or only those with NVLink, row remapping (Ampere
    # and later) or page retirement (Volta).
    applies_to: str = "all"
    # Off unless the spec names it under `alerts:`: its signal is normal operation on many fleets.
    on_by_default: bool = True

    def concerns(self, gpu) -> bool:
        """Whether the alert is about GPUs of this model (a gpus.GpuModel) at all."""
        return {"all": True, "nvlink": gpu.nvlink_links > 0, "row_remapping": gpu.row_remapping}[self.applies_to]


def is_enabled(definition: AlertDef, override) -> bool:
    """As the spec's override (its `enabled`) says; an alert the spec does not name, as the catalog
    says. Naming an alert that is off by default turns it on, so an override is never inert."""
    if override is None:
        return definition.on_by_default
    return override.enabled is not False


BLIND_ALERT = "GPUAlertBlind"
_XID_SIGNALS = (("xid_errors", "xid_window_count", "xid_last"),)
_NVLINK_ERRORS = ("nvlink_crc_flit_errors", "nvlink_crc_data_errors", "nvlink_replay_errors", "nvlink_recovery_errors")
_GPU = "{{ $labels.cluster }}/{{ $labels.host }} GPU {{ $labels.gpu }} ({{ $labels.gpu_model }})"
_VALUE = '{{ printf "%.1f" $value }}'

ALERTS: tuple[AlertDef, ...] = (
    AlertDef("GPUThermalWarning", "thermal", "warning", "notify", "60s",
             "GPU temperature near its operating limit",
             f"{_GPU} is at {_VALUE} C, at or above its warning threshold.", needs=(("gpu_temp",),)),
    AlertDef("GPUThermalCritical", "thermal", "critical", "throttle", "30s",
             "GPU temperature at its operating limit",
             f"{_GPU} is at {_VALUE} C, at or past its critical threshold; the driver is about to slow it down.",
             needs=(("gpu_temp",),)),
    AlertDef("GPUThermalCriticalPredicted", "thermal", "warning", "notify", "5m",
             "GPU temperature trending towards its critical threshold",
             f"{_GPU} is predicted to reach {_VALUE} C, its critical threshold or above, within the "
             "prediction horizon.", needs=(("gpu_temp",),)),
    AlertDef("GPUPowerSpike", "power", "warning", "notify", "45s",
             "GPU drawing more power than its enforced limit",
             f"{_GPU} draws {_VALUE} W, above its warning fraction of the enforced power limit.",
             needs=(("power_usage",),)),
    AlertDef("GPUPowerCritical", "power", "critical", "preempt", "20s",
             "GPU power draw far beyond its enforced limit",
             f"{_GPU} draws {_VALUE} W, past its critical fraction of the enforced power limit; "
             "suspect power delivery or telemetry.", needs=(("power_usage",),)),
    AlertDef("GPUEccCorrectableSpike", "ecc", "warning", "notify", "5m",
             "Burst of correctable ECC errors",
             f"{_GPU} logged {_VALUE} correctable (single-bit) ECC errors in the last 5 minutes.",
             needs=(("ecc_sbe_volatile",),)),
    AlertDef("GPUEccUncorrectable", "ecc", "critical", "quarantine", "0s",
             "Uncorrectable ECC error",
             f"{_GPU} logged {_VALUE} uncorrectable (double-bit) ECC errors in the last 5 minutes; "
             "its work may have read corrupt memory.", needs=(("ecc_dbe_volatile",),)),
    # 5m: a brief slowdown (a power brake on a supply transient) is the hardware protecting itself.
    AlertDef("GPUThrottling", "throttle", "warning", "notify", "5m",
             "GPU clocks cut by hardware",
             f"{_GPU} has a hardware slowdown, hardware thermal or power brake clock event active.",
             needs=(("clock_event_active", "clock_event_reasons"),)),
    # Caching allocators (PyTorch, JAX) and inference servers hold nearly all framebuffer memory
    # by design, so on ML fleets a full framebuffer is a busy GPU, not pressure: see the runbook.
    AlertDef("GPUMemoryPressure", "memory", "warning", "notify", "5m",
             "GPU framebuffer almost full",
             f"{_GPU} has {_VALUE}% of its framebuffer in use.", needs=(("fb_used",), ("fb_free",)),
             on_by_default=False),
    AlertDef("GPUXidQuarantine", "xid", "critical", "quarantine", "0s",
             "XID error that takes the GPU out of service",
             f"{_GPU} raised XID {{{{ $labels.xid }}}}; the GPU needs to be taken out of service and inspected.",
             xid_codes=(64, 79), needs=_XID_SIGNALS),
    AlertDef("GPUXidReset", "xid", "critical", "reset", "0s",
             "XID error that needs a GPU reset",
             f"{_GPU} raised XID {{{{ $labels.xid }}}}; drain the GPU and reset it.",
             xid_codes=(48, 61, 62, 95, 119, 120), needs=_XID_SIGNALS),
    AlertDef("GPUXidDrain", "xid", "warning", "drain", "0s",
             "XID error that needs the GPU drained",
             f"{_GPU} raised XID {{{{ $labels.xid }}}}; let running work finish, then restart it elsewhere.",
             xid_codes=(63, 74, 92, 94), needs=_XID_SIGNALS),
    AlertDef("GPURowRemapFailure", "memory_repair", "critical", "quarantine", "0s",
             "GPU memory row remapping failed",
             f"{_GPU} failed to remap a memory row; NVIDIA treats this as a reason to replace the board.",
             needs=(("row_remap_failure",),), applies_to="row_remapping"),
    AlertDef("GPURowRemapPending", "memory_repair", "warning", "reset", "0s",
             "GPU memory repair waits for a reset",
             f"{_GPU} has a row remap or page retirement pending; it takes effect after a GPU reset.",
             needs=(("row_remap_pending", "retired_pending"),)),
    AlertDef("GPUNVLinkErrors", "interconnect", "warning", "notify", "5m",
             "NVLink errors rising",
             f"{_GPU} logged {_VALUE} NVLink CRC, replay or recovery errors in the last 5 minutes.",
             needs=(_NVLINK_ERRORS,), applies_to="nvlink"),
    AlertDef("GPUPCIeReplayErrors", "interconnect", "warning", "notify", "5m",
             "PCIe replays rising",
             f"{_GPU} logged {_VALUE} PCIe replays in the last 5 minutes.", needs=(("pcie_replay",),)),
    AlertDef("GPUHealthLow", "health", "warning", "notify", "10m",
             "GPU health score low",
             f"{_GPU} has a health score of {{{{ printf \"%.2f\" $value }}}}, below its threshold."),
    AlertDef("GPUMissing", "inventory", "critical", "quarantine", "2m",
             "Fewer GPUs reporting than the inventory says",
             "{{ $labels.cluster }}/{{ $labels.host }} reports "
             f"{_VALUE} GPUs fewer than the {{{{ $labels.gpu_model }}}} GPUs its inventory lists.",
             scope="host"),
    AlertDef("GPUExporterDown", "exporter", "critical", "notify", "2m",
             "GPU exporter down or absent",
             "The GPU exporter of {{ $labels.cluster }}/{{ $labels.host }} cannot be scraped or has no "
             "scrape target; its GPUs are unobserved.",
             scope="host"),
    AlertDef("GPUExporterStale", "exporter", "critical", "notify", "2m",
             "GPU exporter serving frozen readings",
             "The GPU exporter of {{ $labels.cluster }}/{{ $labels.host }} answers scrapes but its "
             'readings have not changed for at least {{ printf "%.0f" $value }} seconds (NVML or DCGM wedged?); '
             "its GPUs' "
             "readings are frozen and their alerts cannot fire.",
             scope="host", needs=(("exporter_last_success", "total_energy"),)),
    # Fires once per GPU and blinded alert; {missing}, {blind_alert} and {remedy} are filled per rule
    # (Prometheus templates see the expression's labels, not the rule's own).
    AlertDef(BLIND_ALERT, "coverage", "warning", "notify", "10m",
             "An enabled alert cannot see this GPU",
             f"{_GPU} serves no {{missing}}, so {{blind_alert}} cannot fire for it. {{remedy}}"),
)

BY_NAME: dict[str, AlertDef] = {a.name: a for a in ALERTS}

_LABEL_REF = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_PRINTF_REF = re.compile(r'\{\{ printf "%\.(\d)f" \$value \}\}')


def render_annotation(template: str, labels: dict[str, str], value: float) -> str:
    """Evaluate the template subset the catalog uses, as Prometheus would."""
    text = _LABEL_REF.sub(lambda m: labels.get(m.group(1), ""), template)
    return _PRINTF_REF.sub(lambda m: f"{value:.{m.group(1)}f}", text)
