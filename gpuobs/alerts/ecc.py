"""ECC alerts: bursts of correctable errors, and any uncorrectable one."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.promtool_cases import STEP, Case, flat
from gpuobs.series import increase_past, per_setup


def _correctable_cases(b, alert, gpu, t):
    labels = b.gpu_labels(b.host_of(gpu))
    return b.counter_alert(alert, f"{b.n.exporter.job} {gpu.key}", b.n.ecc_sbe_volatile, labels,
                           t.ecc_correctable_warning)


def _uncorrectable_cases(b, alert, gpu, t) -> list[Case]:
    """The volatile count is a level: it fires while above zero, from the first sample on (a GPU
    first scraped with errors already counted), and resolves only when a reset zeroes it."""
    metric = b.n.ecc_dbe_volatile
    labels = b.gpu_labels(b.host_of(gpu))
    due = b.due(alert)
    name = f"{alert.name} {b.n.exporter.job} any model"
    reset = due + 4 * STEP  # the GPU is reset (driver reload): the count starts again from 0
    end = reset + due + 2 * STEP
    rises = Case(f"{name}: count rises, fires").add(metric, labels, f"0x3 1x3 3x{end // STEP}")
    rises.checks += [(3 * STEP, alert.name, []), (3 * STEP + due, alert.name, [b.expect(alert, labels, 1)]),
                     (end, alert.name, [b.expect(alert, labels, 3)])]
    already = Case(f"{name}: already 2 at the first scrape, fires, then resolves after a reset")
    already.add(metric, labels, f"2x{reset // STEP - 1} 0x{(end - reset) // STEP + 1}")
    already.checks += [(due, alert.name, [b.expect(alert, labels, 2)]), (reset - STEP, alert.name,
                                                                          [b.expect(alert, labels, 2)]),
                       (reset + due, alert.name, [])]
    quiet = Case(f"{name}: no errors, quiet").add(metric, labels, flat(0, end))
    quiet.checks.append((end, alert.name, []))
    return [rises, already, quiet]


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
    # A level, not an increase: the volatile count goes back to 0 only with a driver reload or GPU
    # reset, which is what quarantine waits for; an increase() would resolve minutes after the error
    # and never fire for a GPU whose count is already above 0 when first scraped.
    AlertDef("GPUEccUncorrectable", "ecc", "critical", "quarantine", "0s",
             "Uncorrectable ECC error",
             f"{GPU_TEXT} has {{{{ printf \"%.0f\" $value }}}} uncorrectable (double-bit) ECC errors since its "
             "last reset; its work may have read corrupt memory.",
             panel=(links.GPU_DETAIL, links.ECC_PANEL), proof=Proof((UNCORRECTABLE_FAULT,)),
             needs=(("ecc_dbe_volatile",),), cases_per="setup",
             expression=lambda d, model, ns: per_setup(
                 ns, d, "ecc_dbe_volatile", lambda n, _: n.gpu("ecc_dbe_volatile", where="> 0")),
             cases=_uncorrectable_cases),
)
