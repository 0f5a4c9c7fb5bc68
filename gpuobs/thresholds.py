"""Alert thresholds per GPU model: the defaults, and the spec's overrides laid over them."""

from __future__ import annotations

from dataclasses import dataclass, fields

from gpuobs.gpus import GpuModel


@dataclass(frozen=True)
class Thresholds:
    gpu_temp_warning: float | None
    gpu_temp_critical: float | None
    gpu_temp_max_op_offset_warning: float
    gpu_temp_margin_warning: float
    gpu_temp_margin_critical: float
    power_warning_ratio: float
    power_critical_ratio: float
    power_limit_watts: float
    memory_used_warning_ratio: float
    ecc_correctable_warning: int
    nvlink_errors_warning: int
    pcie_replay_warning: int
    health_score_warning: float
    thermal_prediction_horizon: str


def default_thresholds(gpu: GpuModel) -> Thresholds:
    # Power ratios reproduce DESIGN.md's A100 figures (400 W warning, 450 W critical on a 400 W
    # limit) as fractions of the enforced limit, so they carry over to any model and any cap.
    return Thresholds(
        gpu_temp_warning=gpu.gpu_temp_warning, gpu_temp_critical=gpu.gpu_temp_critical,
        gpu_temp_max_op_offset_warning=5, gpu_temp_margin_warning=5, gpu_temp_margin_critical=0,
        power_warning_ratio=1.0, power_critical_ratio=1.125, power_limit_watts=gpu.power_limit_watts,
        memory_used_warning_ratio=0.9, ecc_correctable_warning=10, nvlink_errors_warning=0,
        pcie_replay_warning=0, health_score_warning=0.5, thermal_prediction_horizon="15m",
    )


def resolved_thresholds(gpu: GpuModel, override) -> Thresholds:
    """The model's defaults with every value the spec set (a spec Thresholds, or None) laid over."""
    resolved = default_thresholds(gpu)
    if override is None:
        return resolved
    changes = {f.name: getattr(override, f.name) for f in fields(Thresholds) if getattr(override, f.name) is not None}
    return Thresholds(**{**resolved.__dict__, **changes})
