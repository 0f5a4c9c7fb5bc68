"""GPU models a spec may use: the built-in ones plus its own gpu_models, and their checks."""

from __future__ import annotations

import re

from gpuobs.errors import Problem, shown
from gpuobs.gpus import GPU_MODELS, GpuModel, MigProfile
from gpuobs.spec.schema import Fleet, GpuModelSpec


def _from_spec(spec: GpuModelSpec) -> GpuModel:
    return GpuModel(
        key=spec.name, nvml_name=spec.nvml_name or spec.name, power_limit_watts=spec.power_limit_watts,
        memory_mib=spec.memory_mib, nvlink_links=spec.nvlink_links, reports_temp_margin=spec.reports_temp_margin,
        row_remapping=spec.row_remapping, gpu_temp_warning=spec.gpu_temp_warning,
        gpu_temp_critical=spec.gpu_temp_critical,
        mig_profiles=tuple(MigProfile(p.name, p.compute_slices, p.memory_slices) for p in spec.mig_profiles),
        figures_source="the spec's gpu_models", nvml_pattern=spec.nvml_pattern or "", user_defined=True,
    )


def known_models(fleet: Fleet) -> dict[str, GpuModel]:
    """Built-in models, then the spec's own (which cannot replace a built-in one: checked)."""
    return {**GPU_MODELS, **{m.name: _from_spec(m) for m in fleet.gpu_models if m.name not in GPU_MODELS}}


def check_gpu_models(fleet: Fleet) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, m in enumerate(fleet.gpu_models):
        path = f"gpu_models[{i}]"
        if m.name in GPU_MODELS:
            problems.append(Problem(f"{path}.name", f"'{m.name}' is a built-in model; give yours another name or "
                                    f"set thresholds.{m.name} to change the built-in one's figures"))
        elif m.name in seen:
            problems.append(Problem(f"{path}.name", f"duplicate GPU model name '{m.name}'"))
        seen.add(m.name)
        if not m.nvml_name and not m.nvml_pattern:
            problems.append(Problem(path, "give nvml_name (the name NVML reports) or nvml_pattern"))
        if m.nvml_pattern:
            try:
                re.compile(m.nvml_pattern)
            except re.error as exc:
                problems.append(Problem(f"{path}.nvml_pattern", f"not a regular expression: {exc}"))
            else:
                if m.nvml_name and not re.fullmatch(m.nvml_pattern, m.nvml_name):
                    problems.append(Problem(f"{path}.nvml_pattern", f"does not match its own nvml_name "
                                            f"{shown(m.nvml_name)}"))
        if m.gpu_temp_warning >= m.gpu_temp_critical:
            problems.append(Problem(f"{path}.gpu_temp_warning", f"gpu_temp_warning must be below gpu_temp_critical "
                                    f"(given: {m.gpu_temp_warning:g} and {m.gpu_temp_critical:g})"))
        names = [p.name for p in m.mig_profiles]
        for j, name in enumerate(names):
            if name in names[:j]:
                problems.append(Problem(f"{path}.mig_profiles[{j}].name", f"duplicate MIG profile '{name}'"))
    return problems
