"""Checks of the kubernetes section against the rest of the spec: object names from the fleet name,
tolerations, requests within limits, and a Secret for every secret file a receiver names."""

from __future__ import annotations

from gpuobs.errors import Problem, shown
from gpuobs.receivers import secret_files
from gpuobs.spec.kube import quantity_value
from gpuobs.spec.schema import Exporter, Fleet
from gpuobs.spec.tier_checks import per_cluster

# Label keys gpuobs puts on every object it generates; the spec's own labels must not replace them.
OWN_LABEL_PREFIX = "app.kubernetes.io/"


def _kinds(fleet: Fleet) -> dict:
    """Each host's exporter as the spec sets it (its own, else its cluster's)."""
    by_cluster = {c.name: c.exporter for c in fleet.clusters}
    return {h.name: h.exporter or by_cluster.get(h.cluster) or Exporter() for h in fleet.hosts}


def _dcgm_key(exporter) -> tuple:
    counters = exporter.counters if exporter.counters is not None else "gpuobs"
    return exporter.version or 4, tuple(counters) if isinstance(counters, list) else counters


def _kubernetes_clusters(fleet: Fleet) -> dict:
    """Hosts per Kubernetes cluster: one for the fleet, or one per cluster when each has a Prometheus."""
    if per_cluster(fleet):
        return {f"cluster {c.name}": [h for h in fleet.hosts if h.cluster == c.name] for c in fleet.clusters}
    return {"the Kubernetes cluster": list(fleet.hosts)}


def check_kubernetes(fleet: Fleet, fleet_name: str) -> list[Problem]:
    k = fleet.kubernetes
    if k is None:
        return []
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    kinds = _kinds(fleet)
    for i, host in enumerate(fleet.hosts):
        if kinds[host.name].kind == "nvidia_gpu_exporter":
            add(f"hosts[{i}].exporter.kind" if host.exporter else
                f"clusters[{[c.name for c in fleet.clusters].index(host.cluster)}].exporter.kind",
                "the kubernetes section scrapes gpuobs-exporter or the GPU Operator's dcgm-exporter; "
                "nvidia_gpu_exporter has no standard deployment to scrape there")
    for scope, hosts in _kubernetes_clusters(fleet).items():
        setups = {_dcgm_key(kinds[h.name]) for h in hosts if kinds[h.name].kind == "dcgm-exporter"}
        if len(setups) > 1:
            add("kubernetes.dcgm_exporter", f"{scope} runs one dcgm-exporter DaemonSet with one counters "
                "ConfigMap; its hosts' dcgm-exporter settings (version, counters) must agree")
    if k.exporter is None and any(kinds[h.name].kind == "gpuobs" for h in fleet.hosts):
        add("kubernetes.exporter", "required: some hosts run gpuobs-exporter, which the kubernetes section "
            "deploys as a DaemonSet (image, node selector, ...)")
    if "_" in fleet_name or any(pair in fleet_name for pair in ("..", ".-", "-.")):
        add("name", f"fleet name {shown(fleet_name)} names Kubernetes objects, which cannot contain '_', nor '.' "
            "next to '.' or '-'; set a name with '-' instead")
    for part in ("prometheus_labels", "dashboard_labels"):
        for key in getattr(k, part):
            if key.startswith(OWN_LABEL_PREFIX):
                add(f"kubernetes.{part}.{key}", f"gpuobs sets the {OWN_LABEL_PREFIX}* labels itself; "
                    "choose another key")
    if not k.dashboard_labels:
        add("kubernetes.dashboard_labels", "Grafana's sidecar finds dashboards by label: give at least one")

    e = k.exporter
    if e is None:
        return problems + _check_secrets(fleet)
    if not e.node_selector:
        add("kubernetes.exporter.node_selector", "an empty node selector runs the exporter on every node, also "
            "those without GPUs; give the GPU nodes' label (default nvidia.com/gpu.present: \"true\")")
    for i, toleration in enumerate(e.tolerations):
        path = f"kubernetes.exporter.tolerations[{i}]"
        if toleration.operator == "Exists" and toleration.value is not None:
            add(f"{path}.value", "operator Exists matches any value; leave value out, or use operator Equal")
        if toleration.operator == "Equal" and toleration.key is None:
            add(f"{path}.key", "operator Equal needs a key (or use operator Exists to tolerate every taint)")
    if e.mig_monitor is None and any(h.gpus.mig for h in fleet.hosts):
        add("kubernetes.exporter.mig_monitor", "hosts with MIG need a choice: true reads their MIG instances "
            "(the exporter then runs as root with CAP_SYS_ADMIN, as NVIDIA's runtime requires), false runs "
            "unprivileged and loses the per-instance series (framebuffer, MIG memory alerts)")
    for resource in ("cpu", "memory"):
        request, limit = getattr(e.resources.requests, resource), getattr(e.resources.limits, resource)
        if request and limit and quantity_value(request) > quantity_value(limit):
            add(f"kubernetes.exporter.resources.requests.{resource}",
                f"request {request} is above the limit {limit}; Kubernetes refuses that")
    return problems + _check_secrets(fleet)


def _check_secrets(fleet: Fleet) -> list[Problem]:
    am, k = fleet.alertmanager, fleet.kubernetes
    if am is None:
        if "alertmanager" in k.model_fields_set:
            return [Problem("kubernetes.alertmanager", "the spec has no alertmanager section to configure")]
        return []
    problems = []
    mapped = k.alertmanager.secrets
    used = set()
    for i, receiver in enumerate(am.receivers):
        for where, file in secret_files(receiver):
            used.add(file)
            if file not in mapped:
                problems.append(Problem(
                    f"alertmanager.receivers[{i}].{where}",
                    f"no Secret holds {file} on Kubernetes; add it to kubernetes.alertmanager.secrets "
                    "with the existing Secret and key that hold it"))
    for file in mapped:
        if file not in used:
            problems.append(Problem(f"kubernetes.alertmanager.secrets.{file}",
                                    "no receiver names this file; remove it or fix the path"))
    return problems
