"""Which hosts the simulator serves, with which GPUs, imitating which exporter, on which ports: from a
spec or from flags.

One port per host, because that is what the generated prometheus.yml scrapes: one target per host
(address:exporter_port) whose target labels name the cluster and host.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from gpuobs import catalog
from gpuobs.gpus import GPU_MODELS

from ..exposition import Vocabulary

DCGM_VERSIONS = (3, 4)


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class ExporterMode:
    """Which exporter a simulated host imitates: gpuobs-exporter, or dcgm-exporter of a major version
    serving the fields of its counters CSV."""

    kind: str = catalog.GPUOBS
    version: int = 4  # dcgm-exporter: 3 labels the node `Hostname`, 4 `hostname`
    counters: tuple[str, ...] = catalog.DCGM_DEFAULT_COUNTERS

    @property
    def dcgm_exporter(self) -> bool:
        return self.kind == catalog.DCGM_EXPORTER

    @property
    def vocabulary(self) -> Vocabulary:
        return _vocabulary(self)


@functools.cache
def _vocabulary(mode: ExporterMode) -> Vocabulary:
    """One per mode, so hosts alike share their rendered headers and can share an endpoint."""
    if not mode.dcgm_exporter:
        return Vocabulary(catalog.GPUOBS_PROFILE)
    return Vocabulary(catalog.dcgm_exporter_profile(mode.counters, "Hostname" if mode.version == 3 else "hostname"))


def dcgm_counters(name: str) -> tuple[str, ...]:
    """The fields of a counters CSV named as the spec names them: default (as shipped) or gpuobs."""
    if name == "default":
        return catalog.DCGM_DEFAULT_COUNTERS
    from gpuobs.alerts import ALERTS

    return catalog.gpuobs_dcgm_counters(ALERTS)


@dataclass(frozen=True)
class HostLayout:
    name: str
    model: str  # a key of gpuobs.gpus.GPU_MODELS
    gpus: int
    port: int
    cluster: str = ""
    mig_profiles: tuple[str, ...] = ()
    mig_gpus: tuple[int, ...] | None = None  # GPU indices partitioned; None: all of them
    target_labels: tuple[tuple[str, str], ...] = ()  # what the generated scrape config puts on the target
    exporter: ExporterMode = ExporterMode()
    # The exporters' workload mappings: Kubernetes pods (pod, namespace, container) and HPC jobs (hpc_job)
    # on GPUs 0 to workload_gpus - 1 (all when None), each MIG instance holding its own.
    pods: bool = False
    hpc_jobs: bool = False
    workload_gpus: int | None = None

    def mig_for(self, index: int) -> tuple[str, ...]:
        if not self.mig_profiles or (self.mig_gpus is not None and index not in self.mig_gpus):
            return ()
        return self.mig_profiles


def from_spec(path: str | Path, port_offset: int = 0, base_port: int | None = None) -> list[HostLayout]:
    """The spec's hosts, each with its exporter; each on its exporter_port (+ port_offset), or on
    base_port + its position when base_port is given (free ports when it is 0): specs often give
    every host the same port on different addresses, which cannot all be bound on one machine."""
    from gpuobs.model import build_model  # pydantic: only the --spec path pays for it
    from gpuobs.spec import load_spec

    fleet = load_spec(path)
    model = build_model(fleet, fleet.name or Path(path).stem, str(path))
    layouts = []
    for i, host in enumerate(model.hosts):
        setup = host.exporter
        if setup.kind not in (catalog.GPUOBS, catalog.DCGM_EXPORTER):
            raise LayoutError(f"host {host.name}: the simulator imitates gpuobs and dcgm-exporter, not {setup.kind}")
        if host.gpu.key not in GPU_MODELS:
            raise LayoutError(f"host {host.name}: the simulator knows the built-in GPU models, not {host.gpu.key}")
        exporter = ExporterMode()
        if setup.kind == catalog.DCGM_EXPORTER:
            exporter = ExporterMode(setup.kind, setup.version, setup.counters)
        if base_port is None:
            port = host.exporter_port + port_offset
        else:
            port = base_port + i if base_port else 0  # 0: every host on a free port of its own
        labels = (("cluster", host.cluster), (model.prometheus.host_label, host.name))
        layouts.append(HostLayout(host.name, host.gpu.key, host.gpu_count, port, host.cluster,
                                  host.mig[0][1] if host.mig else (), tuple(index for index, _ in host.mig) or None,
                                  labels, exporter))
    check_ports(layouts)
    return layouts


def from_flags(hosts: int, gpus: int, model: str, base_port: int, prefix: str = "gpu-node-",
               mig_profiles: tuple[str, ...] = (), exporter: ExporterMode = ExporterMode(),
               pods: bool = False) -> list[HostLayout]:
    if model not in GPU_MODELS:
        raise LayoutError(f"unknown GPU model '{model}'; known: {', '.join(GPU_MODELS)}")
    known = {p.name for p in GPU_MODELS[model].mig_profiles}
    unknown = [p for p in mig_profiles if p not in known]
    if unknown:
        raise LayoutError(f"{model} has no MIG profiles {unknown}; known: {', '.join(sorted(known)) or 'none'}")
    if hosts < 1 or gpus < 1:
        raise LayoutError("--hosts and --gpus must be at least 1")
    width = max(2, len(str(hosts)))
    names = [f"{prefix}{i + 1:0{width}d}" for i in range(hosts)]
    layouts = [HostLayout(name, model, gpus, base_port + i if base_port else 0, "sim", mig_profiles,
                          target_labels=(("cluster", "sim"), ("host", name)), exporter=exporter, pods=pods)
               for i, name in enumerate(names)]
    check_ports(layouts)
    return layouts


def check_ports(layouts: list[HostLayout]) -> None:
    seen: dict[int, str] = {}
    for layout in layouts:
        if not 0 <= layout.port <= 65535:
            raise LayoutError(f"host {layout.name}: port {layout.port} is out of range")
        if layout.port and layout.port in seen:
            raise LayoutError(f"hosts {seen[layout.port]} and {layout.name} would both listen on port "
                              f"{layout.port}; pass --base-port to number the hosts' ports from one port")
        seen[layout.port] = layout.name
