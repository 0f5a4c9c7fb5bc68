"""The simulated fleet: hosts of GPUs, simulated time, and the faults active on them.

Time advances in fixed physics steps; faults started through the control API take effect from
the next step, scenario events at the first step at or after their time. One lock guards the
state, since the ticking thread, the control API and the scrapes' hang gates all touch it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import threading
import uuid as uuidlib
from dataclasses import dataclass

from gpuobs.gpus import GPU_MODELS

from ..exposition import Builder, Entity, gpu_entity
from ..xid import XidLog
from .faults import FAULTS, FaultError, resolve_params
from .layout import HostLayout
from .model import DRIVER_VERSION, PATTERNS, SimGpu, make_instances
from .scenario import Event

IDLE_EVERY = 4
# PCI buses of an HGX 8-GPU board, reused per board of eight.
_PCI_BUSES = (0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD)


def _digest(*parts) -> bytes:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


class SimHost:
    def __init__(self, layout: HostLayout, seed: int, pattern: str = "mixed"):
        self.layout = layout
        self.name = layout.name
        self.xids = XidLog()
        self.hung = False
        self.hang_seconds = 0.0
        self.stalled = False  # the collection-stall fault: the endpoint keeps its last snapshot
        self.vocabulary = layout.exporter.vocabulary
        model = GPU_MODELS[layout.model]
        self.gpus: list[SimGpu] = []
        for index in range(layout.gpus):
            rng = random.Random(f"{seed}/{layout.name}/{index}")
            uuid = f"GPU-{uuidlib.UUID(bytes=_digest(seed, layout.name, index)[:16])}"
            pci = f"{index // 8:08X}:{_PCI_BUSES[index % 8]:02X}:00.0"
            serial = str(int.from_bytes(_digest("serial", seed, layout.name, index)[:6], "big"))[:13]
            entity = functools.partial(self._entity, model.nvml_name, index, uuid, pci)
            instances = make_instances(model, list(layout.mig_for(index)), entity, rng, pattern)
            self.gpus.append(SimGpu(layout.name, index, model, entity(), serial, rng, self.xids, instances,
                                    layout.exporter, pattern=pattern, idle=self._idle(index)))

    def _entity(self, model_name: str, index: int, uuid: str, pci: str, mig_profile: str | None = None,
                gi_id: int | None = None) -> Entity:
        """A GPU's or MIG instance's labels, with those of the workload holding it."""
        return gpu_entity(index, uuid, pci, model_name, self.name, mig_profile, gi_id, driver_version=DRIVER_VERSION,
                          attributes=self._workload(index, gi_id), vocabulary=self.vocabulary)

    def _held(self, index: int) -> bool:
        layout = self.layout
        return bool(layout.pods or layout.hpc_jobs) and (layout.workload_gpus is None or index < layout.workload_gpus)

    def _idle(self, index: int) -> bool:
        """Every fourth whole GPU held (3, 7, ...) is held by a notebook that does nothing: an
        allocated GPU sitting idle, for the efficiency rules and dashboard."""
        return self._held(index) and index % IDLE_EVERY == IDLE_EVERY - 1 and not self.layout.mig_for(index)

    def _workload(self, index: int, gi_id: int | None) -> tuple:
        """What the exporters' pod and job mappings say of a GPU or MIG instance: each MIG instance
        holds a workload of its own, so gpuobs-exporter puts none on a MIG GPU's own series."""
        layout = self.layout
        if not self._held(index):
            return ()
        if gi_id is None and layout.mig_for(index) and not layout.exporter.dcgm_exporter:
            return ()
        labels = ()
        if layout.pods and self._idle(index):
            labels = (("pod", f"notebook-{self.name}-gpu{index}"), ("namespace", "research"),
                      ("container", "notebook"))
        elif layout.pods:
            name = f"train-{self.name}-gpu{index}" + (f"-mig{gi_id}" if gi_id else "")
            labels = (("pod", name), ("namespace", "ml"), ("container", "trainer"))
        if layout.hpc_jobs:
            labels += (("hpc_job", str(1000 + 10 * index + (gi_id or 0))),)
        return labels

    def emit(self, out: Builder) -> None:
        for gpu in self.gpus:
            gpu.emit(out)


@dataclass
class ActiveFault:
    id: int
    name: str
    host: str
    gpu: int | None
    params: dict
    started: float
    until: float | None
    targets: list

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "host": self.host, "gpu": self.gpu, "params": self.params,
                "started_s": self.started, "until_s": self.until}


class Fleet:
    def __init__(self, layouts: list[HostLayout], seed: int = 0, step: float = 1.0, epoch: float = 0.0,
                 workload: str = "mixed"):
        if step <= 0:
            raise ValueError("the physics step must be positive")
        if workload not in PATTERNS:
            raise ValueError(f"unknown workload '{workload}'; known: {', '.join(PATTERNS)}")
        self.hosts = [SimHost(layout, seed, workload) for layout in layouts]
        self.by_name = {h.name: h for h in self.hosts}
        self.step = step
        self.epoch = epoch  # Unix time of simulated second 0, for XID timestamps
        self.t = 0.0
        self.lock = threading.RLock()
        self._faults: dict[int, ActiveFault] = {}
        self._ids = itertools.count(1)
        self._events: list[Event] = []

    def schedule(self, events: list[Event]) -> None:
        with self.lock:
            self._events = sorted([*self._events, *events], key=lambda e: e.at)

    def advance_to(self, t: float) -> None:
        """Steps until simulated time `t`; values at a given time depend only on the seed and on
        when faults started and stopped."""
        with self.lock:
            while self.t + self.step <= t + 1e-9:
                self._run_events()
                self._step()

    def _run_events(self) -> None:
        while self._events and self._events[0].at <= self.t + 1e-9:
            event = self._events.pop(0)
            if event.action == "start":
                self.start_fault(event.fault, event.host, event.gpu, event.params, event.duration)
            else:
                self.stop_faults(event.fault, event.host, event.gpu)

    def _step(self) -> None:
        dt = self.step
        for fault in self._faults.values():
            kind = FAULTS[fault.name]
            for target in fault.targets:
                kind.step(target, fault.params, self.t - fault.started, dt)
        for host in self.hosts:
            for gpu in host.gpus:
                gpu.step(self.t, dt)
        self.t += dt
        for fault in [f for f in self._faults.values() if f.until is not None and f.until <= self.t + 1e-9]:
            self._stop(fault)

    def start_fault(self, name: str, host: str | None = None, gpu: int | None = None, params: dict | None = None,
                    duration: float | None = None) -> ActiveFault:
        with self.lock:
            kind = FAULTS.get(name)
            if kind is None:
                raise FaultError(f"unknown fault '{name}'; known: {', '.join(FAULTS)}")
            sim_host = self._host(host)
            resolved = resolve_params(kind, params)
            targets = self._targets(kind, sim_host, gpu)
            busy = [f for f in self._faults.values()
                    if f.name == name and f.host == sim_host.name and set(map(id, f.targets)) & set(map(id, targets))]
            if busy:
                raise FaultError(f"{name} is already active on {sim_host.name} (fault {busy[0].id}); stop it first")
            if duration is not None and duration <= 0:
                raise FaultError("duration must be positive")
            fault = ActiveFault(next(self._ids), name, sim_host.name, gpu, resolved, self.t,
                                None if duration is None else self.t + duration, targets)
            for target in targets:
                kind.start(target, resolved, self.epoch + self.t)
            self._faults[fault.id] = fault
            return fault

    def _host(self, name: str | None) -> SimHost:
        if name is None:
            if len(self.hosts) == 1:
                return self.hosts[0]
            raise FaultError("host is required when the simulator serves several hosts")
        if name not in self.by_name:
            raise FaultError(f"unknown host '{name}'")
        return self.by_name[name]

    @staticmethod
    def _targets(kind, host: SimHost, gpu: int | None) -> list:
        if kind.host_level:
            if gpu is not None:
                raise FaultError(f"{kind.name} acts on the whole host; leave gpu out")
            return [host]
        if gpu is not None:
            if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu < len(host.gpus):
                raise FaultError(f"host {host.name} has GPUs 0..{len(host.gpus) - 1}, not {gpu!r}")
            reason = kind.check(host.gpus[gpu])
            if reason:
                raise FaultError(f"{kind.name} cannot show on {host.name} GPU {gpu}: {reason}")
            return [host.gpus[gpu]]
        targets = [g for g in host.gpus if kind.check(g) is None]
        if not targets:
            raise FaultError(f"{kind.name} cannot show on any GPU of {host.name}: {kind.check(host.gpus[0])}")
        return targets

    def stop_faults(self, name: str | None = None, host: str | None = None, gpu: int | None = None,
                    fault_id: int | None = None) -> list[ActiveFault]:
        with self.lock:
            matching = [f for f in self._faults.values()
                        if (name is None or f.name == name) and (host is None or f.host == host)
                        and (gpu is None or f.gpu == gpu) and (fault_id is None or f.id == fault_id)]
            for fault in matching:
                self._stop(fault)
            return matching

    def _stop(self, fault: ActiveFault) -> None:
        kind = FAULTS[fault.name]
        for target in fault.targets:
            kind.stop(target, fault.params)
        del self._faults[fault.id]

    def active_faults(self) -> list[ActiveFault]:
        with self.lock:
            return list(self._faults.values())
