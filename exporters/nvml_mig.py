"""MIG profile names (the GPU_I_PROFILE label) as NVML names them, `1g.10gb+me` included.

Memory size alone cannot tell `1g.10gb` from `1g.10gb+me`, so the name comes from the parent
GPU's profile table (nvmlDeviceGetGpuInstanceProfileInfo, read once). The exact key into it is
the GPU instance's profile id, which NVML gives privileged users only; otherwise the MIG
device's attributes (slices, memory, media engines) pick the one profile that has them. When
neither answers, the name is DCGM's computation from slices and memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pynvml

from .nvml_errors import permanent


@dataclass(frozen=True)
class Profile:
    name: str
    shape: tuple[int, ...]  # slices, memory MiB, decoders, encoders, JPEG, OFA engines


def computed_name(slices: int, memory_mb: int) -> str:
    """DCGM's GPU_I_PROFILE: `<slices>g.<ceil(memory MiB / 1024)>gb`."""
    return f"{slices}g.{math.ceil(memory_mb / 1024)}gb"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _profile(info) -> Profile:
    # The v2 structure names the profile as nvidia-smi shows it: "MIG 1g.10gb+me".
    name = _text(info.name).removeprefix("MIG ").strip() or computed_name(info.sliceCount, info.memorySizeMB)
    return Profile(name, (info.sliceCount, info.memorySizeMB, info.decoderCount, info.encoderCount,
                          info.jpegCount, info.ofaCount))


class MigProfiles:
    """One GPU's profile table and whether NVML answers which profile an instance has."""

    def __init__(self, parent):
        self._parent = parent
        self._table: dict[int, Profile] | None = None
        self._by_instance = True

    def name(self, gi_id: int, attributes) -> str:
        """The profile of GPU instance `gi_id`; `attributes` are its MIG device's
        (nvmlDeviceGetAttributes_v2). Raises NVMLError_GpuIsLost only."""
        table = self._profiles()
        if self._by_instance:
            try:
                instance = pynvml.nvmlDeviceGetGpuInstanceById(self._parent, gi_id)
                profile = table.get(pynvml.nvmlGpuInstanceGetInfo(instance).profileId)
                if profile is not None:
                    return profile.name
            except pynvml.NVMLError_GpuIsLost:
                raise
            except Exception as exc:  # any failure leaves the attribute match
                self._by_instance = not permanent(exc)
        shape = (attributes.gpuInstanceSliceCount, attributes.memorySizeMB, attributes.sharedDecoderCount,
                 attributes.sharedEncoderCount, attributes.sharedJpegCount, attributes.sharedOfaCount)
        names = {p.name for p in table.values() if p.shape == shape}
        if len(names) == 1:
            return names.pop()
        return computed_name(attributes.gpuInstanceSliceCount, attributes.memorySizeMB)

    def _profiles(self) -> dict[int, Profile]:
        if self._table is None:
            table = {}
            for index in range(pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
                try:
                    info = pynvml.nvmlDeviceGetGpuInstanceProfileInfo(self._parent, index, 2)
                except pynvml.NVMLError_GpuIsLost:
                    raise
                except Exception:  # a profile this GPU lacks, or no table at all
                    continue
                table[info.id] = _profile(info)
            self._table = table
        return self._table
