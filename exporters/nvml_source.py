"""The GPUs NVML shows, read each collection cycle into one snapshot."""

from __future__ import annotations

import logging

from .attribution import Attribution
from .collector import ErrorCounts
from .exposition import Builder
from .gpu import add_xids
from .nvml_events import XidWatcher
from .nvml_processes import Processes
from .nvml_reader import GpuLost, Reader, discover
from .xid import XidLog

log = logging.getLogger(__name__)


class NvmlSource:
    """Discovers the GPUs once (NVML must be initialised); a GPU lost later stays in every
    snapshot as gpu_up 0, so it shows up as missing instead of silently gone. `attribution` puts
    workload labels on the GPUs' series; `processes` adds the series of their processes."""

    def __init__(self, hostname: str, errors: ErrorCounts, xid_timeout_ms: int = 1000,
                 attribution: Attribution | None = None, processes: Processes | None = None):
        self.devices = discover(hostname, errors)
        self.attribution = attribution
        self.reader = Reader(hostname, errors, attribution=attribution, processes=processes)
        self.xids = XidLog()
        handles = {d.index: d.handle for d in self.devices if d.handle is not None}
        self.watcher = XidWatcher(handles, self.xids, errors, xid_timeout_ms)

    def collect(self, builder: Builder, errors: ErrorCounts) -> bool:
        read_any = False
        if self.attribution is not None:
            self.attribution.refresh(errors)
        for dev in self.devices:
            if self.attribution is not None:
                dev.entity = dev.entity.with_attributes(self.attribution.gpu(dev.index, dev.uuid))
            try:
                samples = self.reader.read(dev)
            except GpuLost:
                builder.add("gpu_up", dev.entity, 0)
            except Exception:  # the reader isolates each field; this is a bug, and costs one GPU only
                log.exception("GPU %s: reading failed", dev.index)
                errors.count(dev.index, "read")
                builder.add("gpu_up", dev.entity, 0)
            else:
                builder.add("gpu_up", dev.entity, 1)
                builder.merge(samples)
                read_any = True
            # XID history is the exporter's own record: it stays visible on a lost GPU, whose
            # XID 79 is exactly what an operator needs to see.
            add_xids(builder, dev.entity, self.xids.get(dev.index))
        return read_any
