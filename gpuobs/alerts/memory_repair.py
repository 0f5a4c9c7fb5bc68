"""Memory repair alerts: a row remap that failed, and repairs waiting for a GPU reset."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.promtool_cases import Case
from gpuobs.series import only, per_setup, union

PANEL = (links.GPU_DETAIL, links.REMAP_PANEL)


def _failure(d, model, ns) -> str:
    return per_setup(ns, d, "row_remap_failure", lambda n, models: (
        n.gpu("row_remap_failure", only(models, model.models_of(n.exporter)), "== 1")))


def _pending(d, model, ns) -> str:
    return union([c for n in ns for c in (
        [n.gpu("row_remap_pending", where="== 1")] if n.serves("row_remap_pending") else []) + (
        [n.gpu("retired_pending", where="> 0")] if n.serves("retired_pending") else [])] or [""])


def _failure_cases(b, alert, gpu, t) -> list[Case]:
    labels = b.gpu_labels(b.host_of(gpu))
    metric = b.n.row_remap_failure
    return b.gauge_alert(alert, f"{b.n.exporter.job} flag", labels, [(metric, labels, 1)], [(metric, labels, 0)], 1)


def _pending_cases(b, alert, gpu, t) -> list[Case]:
    n = b.n
    labels = b.gpu_labels(b.host_of(gpu))
    cases = []
    for key, what in (("row_remap_pending", "row remap pending"), ("retired_pending", "page retirement pending")):
        if n.serves(key):
            metric = getattr(n, key)
            cases += b.gauge_alert(alert, f"{n.exporter.job} {what}", labels, [(metric, labels, 1)],
                                   [(metric, labels, 0)], 1)
    return cases


ALERTS = (
    AlertDef("GPURowRemapFailure", "memory_repair", "critical", "quarantine", "0s",
             "GPU memory row remapping failed",
             f"{GPU_TEXT} failed to remap a memory row; NVIDIA treats this as a reason to replace the board.",
             panel=PANEL, proof=Proof((("row-remap-failure", {}),)), needs=(("row_remap_failure",),),
             applies_to="row_remapping", cases_per="setup", expression=_failure, cases=_failure_cases),
    AlertDef("GPURowRemapPending", "memory_repair", "warning", "reset", "0s",
             "GPU memory repair waits for a reset",
             f"{GPU_TEXT} has a row remap or page retirement pending; it takes effect after a GPU reset.",
             panel=PANEL, proof=Proof((("row-remap-pending", {}),)), needs=(("row_remap_pending", "retired_pending"),),
             cases_per="setup", expression=_pending, cases=_pending_cases, waits_for_operator=True),
)
