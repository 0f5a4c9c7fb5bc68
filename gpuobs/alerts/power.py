"""Power alerts: a GPU drawing more than a fraction of the power limit it enforces."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.promql import num
from gpuobs.series import POWER_LIMIT_SOURCES, past_warning

PANEL = (links.GPU_DETAIL, links.POWER_PANEL)
NEEDS = (("power_usage",),)


def _power_cases(ratio_field: str):
    """Just past and at the threshold, from the limit the GPU reports where served and from the
    model's figure."""
    def cases(b, alert, gpu, t):
        n = b.n
        ratio = getattr(t, ratio_field)
        labels = b.gpu_labels(b.host_of(gpu))
        out = []
        own = next((k for k in POWER_LIMIT_SOURCES if n.serves(k)), None)
        limits = [(f"{n.exporter.job} {gpu.key} fallback limit {num(t.power_limit_watts)} W", t.power_limit_watts, [])]
        if own:
            limits.insert(0, (f"{n.exporter.job} {gpu.key} {own} 500 W", 500, [(getattr(n, own), labels, 500)]))
        for name, limit, limit_series in limits:
            at = ratio * limit
            out += b.gauge_alert(alert, name, labels,
                                 [(n.power_usage, labels, at + 10)] + limit_series,
                                 [(n.power_usage, labels, at)] + limit_series, at + 10,
                                 quiet_name=f"at {at:g} W")
        return out

    return cases


ALERTS = (
    AlertDef("GPUPowerSpike", "power", "warning", "notify", "45s",
             "GPU drawing more power than its enforced limit",
             f"{GPU_TEXT} draws {VALUE_TEXT} W, above its warning fraction of the enforced power limit.",
             panel=PANEL, proof=Proof((("power-excursion", {"factor": 1.06}),)), needs=NEEDS,
             expression=lambda d, model, ns: past_warning(ns, "power_usage", ""),
             cases=_power_cases("power_warning_ratio")),
    AlertDef("GPUPowerCritical", "power", "critical", "preempt", "20s",
             "GPU power draw far beyond its enforced limit",
             f"{GPU_TEXT} draws {VALUE_TEXT} W, past its critical fraction of the enforced power limit; "
             "suspect power delivery or telemetry.",
             panel=PANEL, proof=Proof((("power-excursion", {"factor": 1.2}),)), needs=NEEDS,
             expression=lambda d, model, ns: past_warning(ns, "power_usage", "critical"),
             cases=_power_cases("power_critical_ratio")),
)
