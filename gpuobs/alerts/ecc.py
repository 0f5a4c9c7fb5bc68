"""ECC alerts: bursts of correctable errors, and any uncorrectable one."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.series import increase_past, per_setup


def _correctable_cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    return b.counter_alert(alert, f"{b.n.exporter.job} {gpu.key}", b.n.ecc_sbe_volatile, labels,
                           t.ecc_correctable_warning)


def _uncorrectable_cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    return b.counter_alert(alert, f"{b.n.exporter.job} any model", b.n.ecc_dbe_volatile, labels, 0)


# Uncorrectable errors only: no correctable burst on the same GPU.
UNCORRECTABLE_FAULT = ("ecc-storm", {"sbe_per_s": 0.0, "dbe_per_s": 0.1})

ALERTS = (
    AlertDef("GPUEccCorrectableSpike", "ecc", "warning", "notify", "5m",
             "Burst of correctable ECC errors",
             f"{GPU_TEXT} logged {VALUE_TEXT} correctable (single-bit) ECC errors in the last 5 minutes.",
             panel=(links.GPU_DETAIL, links.ECC_PANEL), proof=Proof((("ecc-storm", {"sbe_per_s": 1.0}),)),
             needs=(("ecc_sbe_volatile",),), expression=lambda d, model, ns: increase_past(
                 ns, d, model, "ecc_sbe_volatile", ">=", "ecc_correctable_warning"),
             cases=_correctable_cases),
    AlertDef("GPUEccUncorrectable", "ecc", "critical", "quarantine", "0s",
             "Uncorrectable ECC error",
             f"{GPU_TEXT} logged {VALUE_TEXT} uncorrectable (double-bit) ECC errors in the last 5 minutes; "
             "its work may have read corrupt memory.",
             panel=(links.GPU_DETAIL, links.ECC_PANEL), proof=Proof((UNCORRECTABLE_FAULT,)),
             needs=(("ecc_dbe_volatile",),), cases_per="setup",
             expression=lambda d, model, ns: per_setup(
                 ns, d, "ecc_dbe_volatile", lambda n, _: n.gpu_increase("ecc_dbe_volatile", where="> 0")),
             cases=_uncorrectable_cases),
)
