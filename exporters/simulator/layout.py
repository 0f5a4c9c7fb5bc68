"""Which hosts the simulator serves, with which GPUs, on which ports: from a spec or from flags.

One port per host, because that is what the generated prometheus.yml scrapes: one target per host
(address:exporter_port) whose target labels name the cluster and host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpuobs.gpus import GPU_MODELS


class LayoutError(ValueError):
    pass


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

    def mig_for(self, index: int) -> tuple[str, ...]:
        if not self.mig_profiles or (self.mig_gpus is not None and index not in self.mig_gpus):
            return ()
        return self.mig_profiles


def from_spec(path: str | Path, port_offset: int = 0, base_port: int | None = None) -> list[HostLayout]:
    """The spec's hosts; each on its exporter_port (+ port_offset), or on base_port + its position
    when base_port is given (free ports when it is 0): specs often give every host the same port
    on different addresses, which cannot all be bound on one machine."""
    from gpuobs.spec import load_spec  # pydantic: only the --spec path pays for it

    fleet = load_spec(path)
    layouts = []
    for i, host in enumerate(fleet.hosts):
        if base_port is None:
            port = host.exporter_port + port_offset
        else:
            port = base_port + i if base_port else 0  # 0: every host on a free port of its own
        mig = host.gpus.mig
        labels = (("cluster", host.cluster), (fleet.prometheus.host_label, host.name))
        layouts.append(HostLayout(host.name, host.gpus.model, host.gpus.count, port, host.cluster,
                                  tuple(mig.profiles) if mig else (),
                                  tuple(mig.gpus) if mig and mig.gpus is not None else None, labels))
    check_ports(layouts)
    return layouts


def from_flags(hosts: int, gpus: int, model: str, base_port: int, prefix: str = "gpu-node-",
               mig_profiles: tuple[str, ...] = ()) -> list[HostLayout]:
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
                          target_labels=(("cluster", "sim"), ("host", name))) for i, name in enumerate(names)]
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
