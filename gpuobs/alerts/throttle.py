"""Throttle alert: clocks cut by the hardware itself (slowdown, thermal or power brake)."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.catalog import NVIDIA_GPU_EXPORTER
from gpuobs.series import HW_THROTTLE, hw_throttle, throttle_key


def hardware_slowdown(b, labels) -> tuple[str, list, list, str]:
    """(what is read, inputs with a hardware slowdown, inputs with only software clock events,
    what those are) in the setup's own series."""
    n = b.n
    if n.profile.name == NVIDIA_GPU_EXPORTER:
        reason = "nvidia_smi_clocks_event_reasons_{}".format
        return ("hw_thermal_slowdown",
                [(reason("hw_thermal_slowdown"), labels, 1), (reason("hw_slowdown"), labels, 0)],
                [(reason("hw_thermal_slowdown"), labels, 0), (reason("sw_power_cap"), labels, 1)],
                "software power cap only")
    if throttle_key(n) == "clock_event_active":
        flag = lambda reason: {**labels, "reason": reason}  # noqa: E731
        return ("hw_thermal flag",
                [(n.clock_event_active, flag("hw_thermal"), 1), (n.clock_event_active, flag("hw_slowdown"), 0)],
                [(n.clock_event_active, flag("hw_thermal"), 0), (n.clock_event_active, flag("power_cap"), 1)],
                "software power cap only")
    # Software thermal and sync boost sit between the hardware bits: set, they must not count.
    return ("clock events bitmask", [(n.clock_event_reasons, labels, 0x40 | 0x04)],
            [(n.clock_event_reasons, labels, 0x20 | 0x10 | 0x04 | 0x01)],
            "software thermal, sync boost, power cap and idle bits only")


def _cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    what, throttled, unthrottled, quiet_name = hardware_slowdown(b, labels)
    return b.gauge_alert(alert, f"{b.n.exporter.job} {what}", labels, throttled, unthrottled, 1,
                         quiet_name=quiet_name)


ALERTS = (
    # 5m: a brief slowdown (a power brake on a supply transient) is the hardware protecting itself.
    AlertDef("GPUThrottling", "throttle", "warning", "notify", "5m",
             "GPU clocks cut by hardware",
             f"{GPU_TEXT} has a hardware slowdown, hardware thermal or power brake clock event active.",
             panel=(links.GPU_DETAIL, links.THROTTLE_PANEL), proof=Proof((("thermal-runaway", {}),)),
             needs=(("clock_event_active", "clock_event_reasons"),), cases_per="setup",
             # The flags are recorded just before it, in its own group (generators/rules.py).
             expression=lambda d, model, ns: f"{HW_THROTTLE} == 1" if any(hw_throttle(n) for n in ns) else "",
             cases=_cases),
)
