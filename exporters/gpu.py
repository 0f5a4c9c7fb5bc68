"""Series every GPU carries that both programs derive the same way from what they read:
presence, descriptive info, clock event flags and XID history."""

from __future__ import annotations

from gpuobs.catalog import CLOCK_EVENT_BITS

from .exposition import Builder, Entity
from .xid import XID_MESSAGES, GpuXids

_REASONS = tuple((("reason", name),) for name in CLOCK_EVENT_BITS)
_BITS = tuple(CLOCK_EVENT_BITS.values())


def add_info(builder: Builder, entity: Entity, driver_version: str, serial: str, vbios_version: str) -> None:
    builder.add("gpu_info", entity, 1, (("driver_version", driver_version), ("serial", serial),
                                        ("vbios_version", vbios_version)))


def add_clock_events(builder: Builder, entity: Entity, mask: int) -> None:
    """NVML's bitmask as dcgm's field, plus one 0/1 series per named reason, which PromQL can
    select on without bit arithmetic."""
    builder.add("clock_event_reasons", entity, mask)
    for extra, bit in zip(_REASONS, _BITS, strict=True):
        builder.add("clock_event_active", entity, 1 if mask & bit else 0, extra)


def add_xids(builder: Builder, entity: Entity, xids: GpuXids | None) -> None:
    if xids is None:
        return
    for code in sorted(xids.counts):
        extra = (("xid", code),)
        builder.add("xid_errors", entity, xids.counts[code], extra)
        builder.add("xid_last_seen", entity, round(xids.last_seen[code], 3), extra)
    if xids.last_code is not None:
        code = xids.last_code
        builder.add("xid_last", entity, code, (("err_code", code), ("err_msg", XID_MESSAGES.get(code, ""))))
