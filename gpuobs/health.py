"""What can pull a GPU's health score down: the series each of its five components reads (the
rules are generators/rules.py's health_rules).

A component reading nothing a GPU reports counts as healthy (1), so a GPU's score never falls below
the share of components its exporter gives no series for: GPUHealthLow, which fires below a
threshold, can fire for it only while the threshold is above that floor.
"""

from __future__ import annotations

from gpuobs.catalog import NVIDIA_GPU_EXPORTER, Profile
from gpuobs.gpus import GpuModel

COMPONENTS = ("thermal", "power", "memory", "ecc", "throttle")


def lowerable(profile: Profile, gpu: GpuModel) -> tuple[str, ...]:
    """The components a GPU of this model, served by an exporter with this profile, can bring to 0."""
    series = {
        "thermal": profile.serves("gpu_temp"),
        "power": profile.serves("power_usage"),
        "memory": profile.serves("fb_used") and profile.serves("fb_free"),
        # Only GPUs that remap rows (Ampere and later) report a failed remap.
        "ecc": any(profile.serves(k) for k in ("ecc_dbe_volatile", "ecc_sbe_volatile"))
        or (profile.serves("row_remap_failure") and gpu.row_remapping),
        # nvidia_gpu_exporter's hardware slowdown flags are read by name, whatever else it serves.
        "throttle": profile.name == NVIDIA_GPU_EXPORTER
        or any(profile.serves(k) for k in ("clock_event_active", "clock_event_reasons")),
    }
    return tuple(c for c in COMPONENTS if series[c])


def score(lowered: int) -> float:
    """The health score of a GPU with this many components at 0 and the others at 1, computed as
    Prometheus does (the sum of the components over their number)."""
    return (len(COMPONENTS) - lowered) / len(COMPONENTS)


def floor(profile: Profile, gpu: GpuModel) -> float:
    """The lowest health score such a GPU can have."""
    return score(len(lowerable(profile, gpu)))
