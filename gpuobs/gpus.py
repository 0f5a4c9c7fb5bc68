"""Data-center GPU models: NVML identity, limits and the default alert thresholds per model.

Figures come from ../shared/reference/gpu-models.md (sourced there). A threshold of None means
no public figure exists: the rules then rely on what the GPU reports about itself (its max
operating temperature or its T.Limit margin) and on the hardware-slowdown flags.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MigProfile:
    name: str  # as dcgm-exporter's GPU_I_PROFILE label spells it, e.g. "3g.40gb"
    compute_slices: int  # of 7
    memory_slices: int  # of 8


@dataclass(frozen=True)
class GpuModel:
    key: str  # the name specs use
    nvml_name: str  # nvmlDeviceGetName(), dcgm-exporter's modelName label
    power_limit_watts: float  # default enforced limit: the fallback when none is reported
    memory_mib: int  # NVML framebuffer total
    nvlink_links: int
    reports_temp_margin: bool  # current drivers report thermal limits relative to a T.Limit
    row_remapping: bool  # Ampere and later; Volta retires pages instead
    gpu_temp_warning: float | None
    gpu_temp_critical: float | None
    mig_profiles: tuple[MigProfile, ...] = ()


def _mig(*specs: tuple[str, int, int]) -> tuple[MigProfile, ...]:
    return tuple(MigProfile(*s) for s in specs)


_A100_80_MIG = _mig(("1g.10gb", 1, 1), ("1g.20gb", 1, 2), ("2g.20gb", 2, 2), ("3g.40gb", 3, 4),
                    ("4g.40gb", 4, 4), ("7g.80gb", 7, 8))
_A100_40_MIG = _mig(("1g.5gb", 1, 1), ("1g.10gb", 1, 2), ("2g.10gb", 2, 2), ("3g.20gb", 3, 4),
                    ("4g.20gb", 4, 4), ("7g.40gb", 7, 8))
_H200_MIG = _mig(("1g.18gb", 1, 1), ("1g.35gb", 1, 2), ("2g.35gb", 2, 2), ("3g.71gb", 3, 4),
                 ("4g.71gb", 4, 4), ("7g.141gb", 7, 8))
_B200_MIG = _mig(("1g.23gb", 1, 1), ("1g.45gb", 1, 2), ("2g.45gb", 2, 2), ("3g.90gb", 3, 4),
                 ("4g.90gb", 4, 4), ("7g.180gb", 7, 8))
_GH200_MIG = _mig(("1g.12gb", 1, 1), ("1g.24gb", 1, 2), ("2g.24gb", 2, 2), ("3g.48gb", 3, 4),
                  ("4g.48gb", 4, 4), ("7g.96gb", 7, 8))

GPU_MODELS: dict[str, GpuModel] = {
    m.key: m
    for m in (
        # A100: MaxOp 85, HW slowdown 89, shutdown 92; the 80/85 convention is MaxOp-5 / MaxOp.
        GpuModel("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 400, 81920, 12, False, True, 80, 85,
                 _A100_80_MIG),
        GpuModel("A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", 400, 40960, 12, False, True, 80, 85,
                 _A100_40_MIG),
        GpuModel("A100-PCIE-80GB", "NVIDIA A100 80GB PCIe", 300, 81920, 0, False, True, 80, 85,
                 _A100_80_MIG),
        # H100 SXM: T.Limit reporting; absolute fallback derived from the H800 sibling (MaxOp 87).
        GpuModel("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", 700, 81559, 18, True, True, 82, 87,
                 _A100_80_MIG),
        GpuModel("H100-PCIE-80GB", "NVIDIA H100 PCIe", 350, 81559, 0, True, True, None, None,
                 _A100_80_MIG),
        GpuModel("H200-SXM5-141GB", "NVIDIA H200", 700, 143771, 18, True, True, None, None, _H200_MIG),
        GpuModel("GH200-480GB", "NVIDIA GH200 480GB", 900, 97871, 18, True, True, None, None,
                 _GH200_MIG),
        GpuModel("B200", "NVIDIA B200", 1000, 183359, 18, True, True, None, None, _B200_MIG),
        GpuModel("L40S", "NVIDIA L40S", 350, 46068, 0, True, True, None, None),
        GpuModel("L4", "NVIDIA L4", 72, 23034, 0, True, True, None, None),
        # A10: MaxOp 91, slowdown 98; an 80/85 rule would fire 6-11 C early.
        GpuModel("A10", "NVIDIA A10", 150, 23028, 0, False, True, 86, 91),
        # V100: MaxOp 83; Volta retires pages instead of remapping rows.
        GpuModel("V100-SXM2-32GB", "Tesla V100-SXM2-32GB", 300, 32480, 6, False, False, 78, 83),
    )
}
