"""Checks of the sections for several Prometheus servers: per-cluster servers, the global tier and
their remote_write endpoints."""

from __future__ import annotations

from gpuobs.errors import Problem
from gpuobs.promql import seconds
from gpuobs.spec.schema import Fleet, RemoteWrite

# External labels gpuobs sets on every cluster's Prometheus; the spec may not set them itself.
TIER_LABELS = ("cluster", "replica")


def per_cluster(fleet: Fleet) -> bool:
    """Whether the spec asks for a Prometheus per cluster (a cluster's own section, or a global tier)."""
    return fleet.global_ is not None or any(c.prometheus is not None for c in fleet.clusters)


def check_tiers(fleet: Fleet) -> list[Problem]:
    if not per_cluster(fleet):
        return []
    problems: list[Problem] = []
    add = lambda path, message: problems.append(Problem(path, message))  # noqa: E731
    _reserved(add, "prometheus.external_labels", fleet.prometheus.external_labels)
    addresses: dict[str, str] = {}
    for i, cluster in enumerate(fleet.clusters):
        path = f"clusters[{i}].prometheus"
        server = cluster.prometheus
        if fleet.global_ is not None and (server is None or server.address is None):
            add(f"{path}.address", "required with a global tier: the global Prometheus federates from this "
                "host:port")
        if server is None:
            continue
        if server.address is not None:
            if server.address in addresses:
                add(f"{path}.address", f"'{server.address}' is also the Prometheus of cluster "
                    f"'{addresses[server.address]}'; every cluster needs its own")
            addresses.setdefault(server.address, cluster.name)
        seen: set[str] = set()
        for j, replica in enumerate(server.replicas):
            if replica in seen:
                add(f"{path}.replicas[{j}]", f"replica '{replica}' is listed twice")
            seen.add(replica)
        _reserved(add, f"{path}.external_labels", server.external_labels)
        _remote_writes(add, f"{path}.remote_write", server.remote_write)
    if fleet.global_ is not None:
        _reserved(add, "global.external_labels", fleet.global_.external_labels)
        _remote_writes(add, "global.remote_write", fleet.global_.remote_write)
    return problems


def _reserved(add, path: str, labels: dict) -> None:
    for key in labels:
        if key in TIER_LABELS:
            add(f"{path}.{key}", f"label '{key}' is set by gpuobs on every cluster's Prometheus (cluster=<name>, "
                "replica=<replica>); choose another name")


def _remote_writes(add, path: str, endpoints: list[RemoteWrite]) -> None:
    urls: set[str] = set()
    for i, endpoint in enumerate(endpoints):
        where = f"{path}[{i}]"
        if endpoint.url in urls:
            add(f"{where}.url", "this URL is listed twice; every sample would be sent twice")
        urls.add(endpoint.url)
        if endpoint.basic_auth is not None and endpoint.bearer_token_file is not None:
            add(f"{where}.bearer_token_file", "give basic_auth or bearer_token_file, not both; Prometheus "
                "refuses both")
        queue = endpoint.queue
        if queue is None:
            continue
        if queue.min_shards is not None and queue.max_shards is not None and queue.min_shards > queue.max_shards:
            add(f"{where}.queue.min_shards", f"min_shards {queue.min_shards} is above max_shards {queue.max_shards}")
        if queue.min_backoff and queue.max_backoff and seconds(queue.min_backoff) > seconds(queue.max_backoff):
            add(f"{where}.queue.min_backoff", f"min_backoff {queue.min_backoff} is longer than max_backoff "
                f"{queue.max_backoff}")
