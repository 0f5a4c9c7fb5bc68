"""Per-process GPU memory and SM utilization (opt-in, --process-metrics): who on a GPU holds its
memory and keeps it busy.

Series are per GPU, or per MIG instance on a MIG GPU, with labels `pid` and `process_name`. At most
`cap` processes of each get series of their own: those holding the most memory (then the lowest
PIDs). The rest are summed into one series with pid="other", and gpuobs_process_folded_total counts
each process once as it is folded into it, so a cap that is too low shows. PIDs come and go, so the
prefixes of these series are rendered each cycle and never cached: a cache keyed by PID would grow
for as long as the exporter runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pynvml

from .exposition import Entity

OTHER = "other"
_NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId of a process on a GPU without MIG


@dataclass
class _Process:
    pid: int
    instance: int | None  # GPU instance id; None on a GPU without MIG
    memory: int | None = None  # bytes; None where NVML does not say (MIG without privileges)
    sm: int | None = None  # percent; None where NVML has no per-process utilization


class Processes:
    """Per-process reading, and what it keeps across cycles: NVML's time of the latest utilization
    sample per GPU, and which processes were folded last cycle per GPU or instance."""

    def __init__(self, cap: int):
        self.cap = cap
        self._last_sample: dict[int, int] = {}  # GPU index -> µs
        self._folded: dict[tuple[int, int | None], set[int]] = {}
        self._folded_total: dict[tuple[int, int | None], int] = {}

    def read(self, reader, dev, out) -> None:
        """The processes field of a GPU (nvml_reader's field signature); the graphics list and the
        utilization samples are fields of their own within it, so that a GPU without them (a compute
        GPU, a MIG GPU) still serves memory per process."""
        processes: dict[int, _Process] = {}
        # The lists are asked for by version: the unversioned names raise an exception of pynvml's own,
        # not NVML's FunctionNotFound, on drivers before R510, which lack v3 (these series are absent there).
        _add(processes, pynvml.nvmlDeviceGetComputeRunningProcesses_v3(dev.handle))
        if "graphics_processes" not in dev.unsupported:
            reader.attempt(dev, "graphics_processes", _read_graphics, dev.handle, processes)
        if "process_utilization" not in dev.unsupported:
            reader.attempt(dev, "process_utilization", self._read_utilization, dev, processes)
        entities = {None: dev.entity, **{gi_id: entity for _, entity, gi_id in reader.mig_instances(dev)}}
        for instance, entity in entities.items():
            mine = [p for p in processes.values() if p.instance == instance]
            self._emit(out, (dev.index, instance), entity, mine)

    def _read_utilization(self, dev, processes: dict[int, _Process]) -> None:
        """The latest sample of each process since the previous cycle; a listed process without one
        ran no kernel meanwhile (0)."""
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(dev.handle, self._last_sample.get(dev.index, 0))
        except pynvml.NVMLError_NotFound:  # no sample since the previous cycle
            samples = []
        latest: dict[int, object] = {}
        for sample in samples:
            if sample.pid not in latest or sample.timeStamp > latest[sample.pid].timeStamp:
                latest[sample.pid] = sample
        if latest:
            self._last_sample[dev.index] = max(s.timeStamp for s in latest.values())
        for process in processes.values():
            sample = latest.get(process.pid)
            process.sm = sample.smUtil if sample is not None else 0

    def _emit(self, out, key: tuple[int, int | None], entity: Entity, processes: list[_Process]) -> None:
        ranked = sorted(processes, key=lambda p: (-(p.memory or 0), p.pid))
        kept, folded = ranked[:self.cap], ranked[self.cap:]
        # A copy whose prefix cache lives for this cycle only (the module's docstring says why).
        fresh = Entity(entity.pairs, entity.vocabulary, entity.attributes)
        for process in kept:
            extra = (("pid", process.pid), ("process_name", _name(process.pid)))
            _add_usage(out, fresh, extra, process.memory, process.sm)
        if folded:
            _add_usage(out, fresh, (("pid", OTHER),), _sum(p.memory for p in folded), _sum(p.sm for p in folded))
        now = {p.pid for p in folded}
        self._folded_total[key] = self._folded_total.get(key, 0) + len(now - self._folded.get(key, set()))
        self._folded[key] = now
        out.add("process_folded", entity, self._folded_total[key])


def _add(processes: dict[int, _Process], listed) -> None:
    """A process in both lists (graphics and compute) is one, holding the larger amount they give."""
    for info in listed:
        instance = getattr(info, "gpuInstanceId", _NO_INSTANCE)
        process = processes.setdefault(info.pid, _Process(info.pid, None if instance == _NO_INSTANCE else instance))
        if info.usedGpuMemory is not None:
            process.memory = max(process.memory or 0, info.usedGpuMemory)


def _read_graphics(handle, processes: dict[int, _Process]) -> None:
    _add(processes, pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3(handle))


def _name(pid: int) -> str | None:
    """NVML's name of the process; None (no label) when it has none for us, e.g. it just ended."""
    try:
        return pynvml.nvmlSystemGetProcessName(pid) or None
    except pynvml.NVMLError:
        return None


def _sum(values) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _add_usage(out, entity: Entity, extra: tuple, memory: int | None, sm: int | None) -> None:
    if memory is not None:
        out.add("process_memory_used", entity, memory, extra)
    if sm is not None:
        out.add("process_sm_util", entity, sm / 100, extra)
