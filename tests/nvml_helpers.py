"""The NVML exporter's collection, cycled by hand against the fake NVML (tests/nvml_fake.py)."""

import pynvml

from exporters.collector import Collector, ErrorCounts
from exporters.nvml_source import NvmlSource


class Exporter:
    """An NvmlSource and its collector; `options` are NvmlSource's (attribution, processes)."""

    def __init__(self, **options):
        pynvml.nvmlInit()
        self.errors = ErrorCounts()
        self.source = NvmlSource("node-1", self.errors, xid_timeout_ms=50, **options)
        self.collector = Collector(self.source.collect, 60, "nvml", errors=self.errors)

    def cycle(self, times: int = 1) -> bytes:
        for _ in range(times):
            body = self.collector.collect_once().body
        return body

    def errors_of(self, gpu, field):
        return dict(self.errors.items()).get((str(gpu), field), 0)
