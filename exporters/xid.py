"""XID history per GPU: a counter per code and a last-seen time, since a last-value gauge
(dcgm-exporter's DCGM_FI_DEV_XID_ERRORS) hides a repeat of the same code."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# Short descriptions in dcgm-exporter's err_msg style, after NVIDIA's XID catalog
# (docs.nvidia.com/deploy/xid-errors); codes outside the table get an empty err_msg.
XID_MESSAGES: dict[int, str] = {
    13: "Graphics Engine Exception",
    31: "GPU memory page fault",
    32: "Invalid or corrupted push buffer stream",
    38: "Driver firmware error",
    43: "GPU stopped processing",
    45: "Preemptive cleanup, due to previous errors",
    48: "Double Bit ECC Error",
    61: "Internal micro-controller breakpoint/warning",
    62: "Internal micro-controller halt",
    63: "ECC page retirement or row remapping recording event",
    64: "ECC page retirement or row remapper recording failure",
    68: "NVDEC0 Exception",
    69: "Graphics Engine class error",
    74: "NVLINK Error",
    79: "GPU has fallen off the bus",
    92: "High single-bit ECC error rate",
    94: "Contained ECC error",
    95: "Uncontained ECC error",
    119: "GSP RPC Timeout",
    120: "GSP Error",
}


@dataclass
class GpuXids:
    counts: dict[int, int] = field(default_factory=dict)
    last_seen: dict[int, float] = field(default_factory=dict)
    last_code: int | None = None


class XidLog:
    """Written by an event thread (or the simulator), read by the collector: one lock guards both."""

    def __init__(self):
        self._lock = threading.Lock()
        self._gpus: dict[int, GpuXids] = {}

    def record(self, gpu: int, code: int, when: float) -> None:
        with self._lock:
            xids = self._gpus.setdefault(gpu, GpuXids())
            xids.counts[code] = xids.counts.get(code, 0) + 1
            xids.last_seen[code] = when
            xids.last_code = code

    def get(self, gpu: int) -> GpuXids | None:
        """A copy, so the caller renders a consistent view while events keep arriving."""
        with self._lock:
            xids = self._gpus.get(gpu)
            return None if xids is None else GpuXids(dict(xids.counts), dict(xids.last_seen), xids.last_code)
