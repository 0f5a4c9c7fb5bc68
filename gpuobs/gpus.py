"""Data-center GPU models: NVML identity, limits and the default alert thresholds per model.

Every model has absolute temperature figures, because dcgm-exporter's default counters serve
neither the GPU's own max operating temperature nor its T.Limit margin: without a figure a hot
GPU would raise nothing. Where the GPU reports its own limit or margin, the rules prefer that.

How the figures were derived (sources: NVIDIA's driver output in public `nvidia-smi -q`
captures, collected in gpuobs' reference notes):
- GPUs that report absolute thresholds (Volta, Ampere): critical = the reported GPU Max
  Operating Temp, warning = 5 C below it.
- GPUs that report thresholds relative to a T.Limit (Hopper, Ada, Blackwell on current drivers):
  critical = the T.Limit as an absolute temperature, i.e. current temperature plus reported
  headroom in the same capture (85-88 C across H100, H200, L40S, L4, GH200); where NVML itself
  reported an absolute max operating temperature (H200: 87 C) that figure is used. Warning = 5 C
  below. These GPUs' margins are better still: the rules use them wherever the exporter serves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MigProfile:
    name: str  # as dcgm-exporter's GPU_I_PROFILE label spells it, e.g. "3g.40gb"
    compute_slices: int  # of the GPU's compute slices (7 on most models, 4 on the A30)
    memory_slices: int  # of the GPU's memory slices (8 on most models, 4 on the A30)


@dataclass(frozen=True)
class GpuModel:
    key: str  # the name specs use
    nvml_name: str  # nvmlDeviceGetName(), dcgm-exporter's modelName label
    power_limit_watts: float  # default enforced limit: the fallback when none is reported
    memory_mib: int  # NVML framebuffer total
    nvlink_links: int
    reports_temp_margin: bool  # current drivers report thermal limits relative to a T.Limit
    row_remapping: bool  # Ampere and later; Volta retires pages instead
    gpu_temp_warning: float
    gpu_temp_critical: float
    mig_profiles: tuple[MigProfile, ...] = ()
    compute_slices: int = 7  # a MIG layout's compute and memory slices must fit these
    memory_slices: int = 8
    figures_source: str = ""  # where the thermal and power figures come from, for people reading output
    nvml_pattern: str = ""  # a full-match regex of NVML names; empty: exactly nvml_name
    user_defined: bool = False

    def matches(self, nvml_name: str) -> bool:
        if self.nvml_pattern:
            return re.fullmatch(self.nvml_pattern, nvml_name) is not None
        return nvml_name == self.nvml_name


def _mig(*specs: tuple[str, int, int]) -> tuple[MigProfile, ...]:
    return tuple(MigProfile(*s) for s in specs)


_A100_80_MIG = _mig(("1g.10gb", 1, 1), ("1g.20gb", 1, 2), ("2g.20gb", 2, 2), ("3g.40gb", 3, 4),
                    ("4g.40gb", 4, 4), ("7g.80gb", 7, 8))
_A100_40_MIG = _mig(("1g.5gb", 1, 1), ("1g.10gb", 1, 2), ("2g.10gb", 2, 2), ("3g.20gb", 3, 4),
                    ("4g.20gb", 4, 4), ("7g.40gb", 7, 8))
_H100_94_MIG = _mig(("1g.12gb", 1, 1), ("1g.24gb", 1, 2), ("2g.24gb", 2, 2), ("3g.47gb", 3, 4),
                    ("4g.47gb", 4, 4), ("7g.94gb", 7, 8))
_H200_MIG = _mig(("1g.18gb", 1, 1), ("1g.35gb", 1, 2), ("2g.35gb", 2, 2), ("3g.71gb", 3, 4),
                 ("4g.71gb", 4, 4), ("7g.141gb", 7, 8))
_B200_MIG = _mig(("1g.23gb", 1, 1), ("1g.45gb", 1, 2), ("2g.45gb", 2, 2), ("3g.90gb", 3, 4),
                 ("4g.90gb", 4, 4), ("7g.180gb", 7, 8))
_GH200_MIG = _mig(("1g.12gb", 1, 1), ("1g.24gb", 1, 2), ("2g.24gb", 2, 2), ("3g.48gb", 3, 4),
                  ("4g.48gb", 4, 4), ("7g.96gb", 7, 8))
_A30_MIG = _mig(("1g.6gb", 1, 1), ("2g.12gb", 2, 2), ("4g.24gb", 4, 4))

_AMPERE_ABS = "reported GPU Max Operating Temp {0} C (absolute); warning 5 C below"
_TLIMIT = "T.Limit reporting; absolute fallback {0} C = current + headroom in real captures; warning 5 C below"

GPU_MODELS: dict[str, GpuModel] = {
    m.key: m
    for m in (
        # A100: MaxOp 85, HW slowdown 89, shutdown 92; the 80/85 convention is MaxOp-5 / MaxOp.
        GpuModel("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 400, 81920, 12, False, True, 80, 85,
                 _A100_80_MIG, figures_source=_AMPERE_ABS.format(85)),
        GpuModel("A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", 400, 40960, 12, False, True, 80, 85,
                 _A100_40_MIG, figures_source=_AMPERE_ABS.format(85)),
        GpuModel("A100-PCIE-80GB", "NVIDIA A100 80GB PCIe", 300, 81920, 0, False, True, 80, 85,
                 _A100_80_MIG, figures_source=_AMPERE_ABS.format(85)),
        # Older drivers report the name without its "NVIDIA " prefix.
        GpuModel("A100-PCIE-40GB", "NVIDIA A100-PCIE-40GB", 250, 40960, 0, False, True, 80, 85,
                 _A100_40_MIG, figures_source=_AMPERE_ABS.format(85) + " (as the other GA100 boards)",
                 nvml_pattern="(NVIDIA )?A100-PCIE-40GB"),
        # A800: the export variant of the A100 SXM4 80GB (same GA100 board, NVLink cut to 8 links).
        GpuModel("A800-SXM4-80GB", "NVIDIA A800-SXM4-80GB", 400, 81920, 8, False, True, 80, 85,
                 _A100_80_MIG, figures_source=_AMPERE_ABS.format(85) + " (as the A100 SXM4 it derives from)"),
        GpuModel("A30", "NVIDIA A30", 165, 24576, 0, False, True, 80, 85, _A30_MIG, compute_slices=4,
                 memory_slices=4, figures_source=_AMPERE_ABS.format(85) + " (as the other GA100 boards)"),
        # A10: MaxOp 91, slowdown 98; an 80/85 rule would fire 6-11 C early.
        GpuModel("A10", "NVIDIA A10", 150, 23028, 0, False, True, 86, 91, figures_source=_AMPERE_ABS.format(91)),
        GpuModel("A10G", "NVIDIA A10G", 300, 23028, 0, False, True, 83, 88,
                 figures_source="reported GPU Max Operating Temp 88 C (absolute); warning 5 C below"),
        # H100 SXM: the H800 sibling (same board family) reports MaxOp 87 in absolute terms.
        GpuModel("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", 700, 81559, 18, True, True, 82, 87,
                 _A100_80_MIG, figures_source=_TLIMIT.format(87) + "; the H800 sibling reports MaxOp 87 C"),
        GpuModel("H100-PCIE-80GB", "NVIDIA H100 PCIe", 350, 81559, 0, True, True, 82, 87, _A100_80_MIG,
                 figures_source=_TLIMIT.format(87) + " (GH100, as the H100 SXM)"),
        GpuModel("H100-NVL", "NVIDIA H100 NVL", 400, 95830, 0, True, True, 82, 87, _H100_94_MIG,
                 figures_source=_TLIMIT.format(87) + " (GH100, same T.Limit offsets as the H100 SXM)"),
        GpuModel("H800-SXM5-80GB", "NVIDIA H800", 700, 81559, 8, True, True, 82, 87, _A100_80_MIG,
                 figures_source="reported GPU Max Operating Temp 87 C (absolute); warning 5 C below"),
        GpuModel("H200-SXM5-141GB", "NVIDIA H200", 700, 143771, 18, True, True, 82, 87, _H200_MIG,
                 figures_source=_TLIMIT.format(87) + "; NVML reported max operating temperature 87 C"),
        GpuModel("H200-NVL", "NVIDIA H200 NVL", 600, 143771, 0, True, True, 82, 87, _H200_MIG,
                 figures_source=_TLIMIT.format(87) + " (GH100 with HBM3e, as the H200)"),
        GpuModel("GH200-480GB", "NVIDIA GH200 480GB", 900, 97871, 18, True, True, 81, 86, _GH200_MIG,
                 figures_source=_TLIMIT.format(86)),
        # Blackwell: no absolute or T.Limit capture is public; the Hopper T.Limit is the fallback.
        GpuModel("B200", "NVIDIA B200", 1000, 183359, 18, True, True, 82, 87, _B200_MIG,
                 figures_source=_TLIMIT.format(87) + " (no Blackwell capture public: Hopper's T.Limit)"),
        GpuModel("L40S", "NVIDIA L40S", 350, 46068, 0, True, True, 83, 88, figures_source=_TLIMIT.format(88)),
        GpuModel("L40", "NVIDIA L40", 300, 46068, 0, True, True, 83, 88,
                 figures_source=_TLIMIT.format(88) + " (AD102, as the L40S)"),
        GpuModel("L4", "NVIDIA L4", 72, 23034, 0, True, True, 81, 86, figures_source=_TLIMIT.format(86)),
        # T4: Turing reports absolute thresholds.
        GpuModel("T4", "Tesla T4", 70, 15360, 0, False, False, 80, 85,
                 figures_source="reported GPU Max Operating Temp 85 C (absolute); warning 5 C below"),
        # V100: MaxOp 83; Volta retires pages instead of remapping rows.
        GpuModel("V100-SXM2-32GB", "Tesla V100-SXM2-32GB", 300, 32480, 6, False, False, 78, 83,
                 figures_source="reported GPU Max Operating Temp 83 C (absolute); warning 5 C below"),
        GpuModel("V100-SXM2-16GB", "Tesla V100-SXM2-16GB", 300, 16160, 6, False, False, 78, 83,
                 figures_source="reported GPU Max Operating Temp 83 C (absolute); warning 5 C below"),
    )
}


def slices_of(profile_name: str) -> int:
    """Compute slices of a MIG profile from its name: '3g.40gb' -> 3 (the 'g' count is NVIDIA's)."""
    return int(profile_name.split("g.", 1)[0])
