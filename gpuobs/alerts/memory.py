"""Memory alert: a framebuffer almost full (off by default: see its runbook)."""

from __future__ import annotations

import math

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.promql import num, sel
from gpuobs.series import by_model, threshold_of


def _expression(d, model, ns) -> str:
    return by_model(model.gpu_models, threshold_of(model, "memory_used_warning_ratio"), lambda m, v: (
        f"100 * ({sel('gpu:framebuffer_used:ratio', m)} >= {num(v)})"))


def _cases(b, alert, gpu, t):
    n = b.n
    labels = b.gpu_labels(b.host_of(gpu))
    total = gpu.memory_mib
    # 64 MiB either side of the threshold, within the framebuffer.
    used = min(total, math.ceil(total * t.memory_used_warning_ratio) + 64)
    below = max(0, math.floor(total * t.memory_used_warning_ratio) - 64)
    mib = lambda v: b.value("fb_used", v)  # noqa: E731
    return b.gauge_alert(
        alert, f"{n.exporter.job} {gpu.key} {num(t.memory_used_warning_ratio * 100)}%", labels,
        [(n.fb_used, labels, mib(used)), (n.fb_free, labels, mib(total - used))],
        [(n.fb_used, labels, mib(below)), (n.fb_free, labels, mib(total - below))],
        100 * (used / (used + (total - used))))


LEAK_FAULT = ("memory-leak", {})

ALERTS = (
    # Caching allocators (PyTorch, JAX) and inference servers hold nearly all framebuffer memory
    # by design, so on ML fleets a full framebuffer is a busy GPU, not pressure: see the runbook.
    AlertDef("GPUMemoryPressure", "memory", "warning", "notify", "5m",
             "GPU framebuffer almost full",
             f"{GPU_TEXT} has {VALUE_TEXT}% of its framebuffer in use.",
             panel=(links.GPU_DETAIL, links.MEMORY_PANEL), proof=Proof((LEAK_FAULT,)),
             needs=(("fb_used",), ("fb_free",)), on_by_default=False, expression=_expression, cases=_cases),
)
