"""Health alert: a GPU's health score (the mean of five components) below its threshold."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.alerts.ecc import UNCORRECTABLE_FAULT
from gpuobs.alerts.memory import LEAK_FAULT
from gpuobs.alerts.throttle import hardware_slowdown
from gpuobs.health import lowerable
from gpuobs.health import score as health_score
from gpuobs.promtool_cases import STEP
from gpuobs.series import recorded_past


def _cases(b, alert, gpu, t):
    """The fewest components at 0 that take the score (their mean) below the threshold, the
    others at 1; and a GPU healthy in every component. The spec makes sure the GPU's exporter
    serves enough components (spec/alert_checks.py)."""
    n = b.n
    labels = b.gpu_labels(b.host_of(gpu))
    components = lowerable(n.profile, gpu)
    lowered = next(k for k in range(1, len(components) + 1) if health_score(k) < t.health_score_warning)
    sick, well = _inputs(b, alert, t, labels)
    fire = [i for c in components[:lowered] for i in sick[c]] + [i for c in components[lowered:] for i in well[c]]
    quiet = [i for c in components for i in well[c]]
    return b.gauge_alert(alert, f"{n.exporter.job} {gpu.key} {', '.join(components[:lowered])} at 0", labels,
                         _with_limits(b, labels, fire), _with_limits(b, labels, quiet),
                         health_score(lowered), quiet_name="healthy")


def _inputs(b, alert, t, labels) -> tuple[dict, dict]:
    """({component: inputs taking it to 0}, {component: inputs keeping it at 1}); the GPU's own
    limits, where served, are 90 C and 400 W (_with_limits)."""
    n = b.n
    critical = 90 if n.serves("gpu_max_op_temp") else t.gpu_temp_critical
    limit = 400 if n.serves("enforced_power_limit") else t.power_limit_watts
    mib = lambda v: b.value("fb_used", v)  # noqa: E731
    sick = {"thermal": [(n.gpu_temp, labels, critical + 5)],
            "power": [(n.power_usage, labels, t.power_critical_ratio * limit + 10)],
            "memory": [(n.fb_used, labels, mib(1000)), (n.fb_free, labels, 0)],
            "ecc": _ecc_errors(b, alert, labels),
            "throttle": hardware_slowdown(b, labels)[1]}
    well = {"thermal": [(n.gpu_temp, labels, critical - 40)],
            "power": [(n.power_usage, labels, t.power_warning_ratio * limit / 2)],
            "memory": [(n.fb_used, labels, mib(100)), (n.fb_free, labels, mib(900))],
            "ecc": [], "throttle": []}
    return sick, well


def _ecc_errors(b, alert, labels) -> list:
    """A double-bit error counted since the last reset, or a thousand single-bit ones within the hour,
    else a failed row remap."""
    n = b.n
    for key in ("ecc_dbe_volatile", "ecc_sbe_volatile"):
        if n.serves(key):
            return [(getattr(n, key), labels, f"0 1000x{b.due(alert) // STEP}")]
    return [(n.row_remap_failure, labels, 1)]


def _with_limits(b, labels, inputs: list) -> list:
    """`inputs` with the GPU's own limits where the setup serves them, and the series that makes
    it present where `inputs` lack it."""
    n = b.n
    limits = [(getattr(n, key), labels, value) for key, value in (("enforced_power_limit", 400),
                                                                  ("gpu_max_op_temp", 90)) if n.serves(key)]
    given = {metric for metric, _, _ in inputs}
    return limits + inputs + [p for p in b.presence(labels) if p[0] not in given]


ALERTS = (
    AlertDef("GPUHealthLow", "health", "warning", "notify", "10m",
             "GPU health score low",
             f"{GPU_TEXT} has a health score of {{{{ printf \"%.2f\" $value }}}}, below its threshold.",
             panel=(links.HEALTH, links.HEALTH_SCORE_PANEL),
             # Power past critical, uncorrectable errors and a full framebuffer together pull the
             # score below 0.5; no single fault does.
             proof=Proof((("power-excursion", {"factor": 1.2}), UNCORRECTABLE_FAULT, LEAK_FAULT)),
             expression=lambda d, model, ns: recorded_past(model, "gpu:health:score", "<", "health_score_warning"),
             cases=_cases),
)
