"""kubernetes/: the same configuration as objects for prometheus-operator (kube-prometheus-stack).

Nothing here is a second copy: the PrometheusRules wrap the documents of rules.py, the dashboard
ConfigMaps carry the JSON text the grafana/ folder gets, and the Alertmanager Secret holds
alertmanager.py's configuration with each secret file moved to where the operator mounts the
Secret holding it. The monitor's relabelings give every series the target labels of the static
scrape config (prometheus.target_labels), mapped from the node each exporter pod runs on, so the
rules and dashboards work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from gpuobs.catalog import DCGM_EXPORTER, GPUOBS
from gpuobs.generators import alertmanager, dcgm_counters, grafana, rules
from gpuobs.generators.prometheus import target_labels
from gpuobs.model import FleetModel, Host
from gpuobs.render import to_json, to_yaml

FOLDER = "kubernetes"
EXPORTER = "gpuobs-exporter"
EXPORTER_PORT = 9400  # the exporter's and dcgm-exporter's port
PORT_NAME = "metrics"
HEALTH_PATH = "/-/healthy"
NODE_NAME = "__meta_kubernetes_pod_node_name"
# Target labels prometheus-operator adds that the static config has not; dropped, so a restarted
# exporter pod continues its series (and the rules' 1h history) instead of starting new ones.
OPERATOR_LABELS = "container|endpoint|namespace|pod|service"
ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml"
SECRETS_DIR = "/etc/alertmanager/secrets"  # where the operator mounts each Secret of Alertmanager.spec.secrets
MOUNT_ANNOTATION = "gpuobs/alertmanager-secrets"
MONITORING_API = "monitoring.coreos.com/v1"
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"  # the kubelet's, holding its kubelet.sock
POD_RESOURCES_VOLUME = "pod-resources"


def own_labels(model: FleetModel, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "gpuobs", "app.kubernetes.io/instance": model.name,
            "app.kubernetes.io/component": component}


def _metadata(model: FleetModel, name: str, component: str, extra=(), annotations=None) -> dict:
    metadata = {"name": name, "namespace": model.kubernetes.namespace,
                "labels": {**own_labels(model, component), **dict(extra)}}
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def namespace(model: FleetModel) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": model.kubernetes.namespace, "labels": own_labels(model, "namespace")}}


def daemonset(model: FleetModel, hosts: Sequence[Host], others: Sequence[Host] = ()) -> dict:
    """`others`: GPU nodes of the same cluster monitored by another exporter, kept free of this one."""
    k = model.kubernetes.exporter
    probe = {"httpGet": {"path": HEALTH_PATH, "port": PORT_NAME}, "timeoutSeconds": 5}
    container = {
        "name": "exporter",
        "image": k.image,
        "imagePullPolicy": k.image_pull_policy,
        "args": [f"--web.listen-address=:{EXPORTER_PORT}"],
        "env": [
            # The exporter's hostname label names the node, not the pod.
            {"name": "GPUOBS_HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            # The NVIDIA container runtime exposes every GPU and the NVML library without allocating
            # GPUs from the device plugin: monitoring must not take GPUs away from workloads.
            {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
            {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"},
        ],
        "ports": [{"name": PORT_NAME, "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 10},
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 3},
        "resources": {part: dict(amounts) for part, amounts in (("requests", k.requests), ("limits", k.limits))
                      if amounts},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    # NVML reads the device nodes the runtime adds, readable by every user: no root needed. MIG
    # instances are the exception: NVIDIA's runtime adds the mig-monitor capability only to a
    # container with CAP_SYS_ADMIN, which takes effect only for root; so only where MIG hosts are.
    user = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534}
    root = {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0}
    if k.mig_monitor and any(h.mig for h in hosts):
        container["env"].append({"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": "all"})
        container["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
        user = root
    volumes = []
    if k.pod_resources:
        # The kubelet's pod-resources socket says which pod holds each GPU. It is root's, and
        # connecting to a unix socket takes write access to it: root, but no capability.
        container["args"].append("--kubernetes-pod-resources")
        container["volumeMounts"] = [{"name": POD_RESOURCES_VOLUME, "mountPath": POD_RESOURCES_DIR, "readOnly": True}]
        volumes.append({"name": POD_RESOURCES_VOLUME, "hostPath": {"path": POD_RESOURCES_DIR, "type": "Directory"}})
        user = root
    if k.process_metrics:
        # NVML lists the processes on each GPU by host PID; their names come from /proc, which shows
        # them only in the node's PID namespace, and other users' processes only to root.
        container["args"].append("--process-metrics")
        user = root
    pod: dict = {
        "nodeSelector": dict(k.node_selector),
        "tolerations": [dict(t) for t in k.tolerations],
        "automountServiceAccountToken": False,  # the exporter never talks to the API server
        "securityContext": {**user, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    if k.process_metrics:
        pod = {"hostPID": True, **pod}
    if volumes:
        pod["volumes"] = volumes
    if others:
        # Spec host names are node names: stay off the nodes whose GPUs dcgm-exporter reports.
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn",
                                   "values": sorted(h.name for h in others)}]}]}}}
    if k.runtime_class:
        pod = {"runtimeClassName": k.runtime_class, **pod}
    selector = own_labels(model, "exporter")
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _metadata(model, EXPORTER, "exporter"),
            "spec": {"selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": selector}, "spec": pod}}}


def service(model: FleetModel) -> dict:
    """Headless: Prometheus scrapes every exporter pod, never a load-balanced address."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(model, EXPORTER, "exporter"),
            "spec": {"clusterIP": "None", "selector": own_labels(model, "exporter"),
                     "ports": [{"name": PORT_NAME, "port": EXPORTER_PORT, "targetPort": PORT_NAME,
                                "protocol": "TCP"}]}}


def _node_regex(names) -> str:
    return "|".join(name.replace(".", "\\.") for name in names)  # spec host names: [a-z0-9._-]


def relabelings(model: FleetModel, hosts: Sequence[Host]) -> list[dict]:
    """The static config's target labels, by node name: the host label is the node's name, and
    every other label (cluster, team, the spec's own) is set on the nodes of the hosts that have it."""
    host_label = model.prometheus.host_label
    hosts_by_value: dict[str, dict[str, list[str]]] = {}
    for host in hosts:
        for label, value in target_labels(model, host).items():
            if label != host_label:
                hosts_by_value.setdefault(label, {}).setdefault(value, []).append(host.name)
    out = [{"action": "replace", "targetLabel": "job", "replacement": hosts[0].exporter.job},
           {"action": "replace", "sourceLabels": [NODE_NAME], "targetLabel": "instance"},
           {"action": "replace", "sourceLabels": [NODE_NAME], "targetLabel": host_label}]
    for label, values in hosts_by_value.items():
        for value, names in values.items():
            out.append({"action": "replace", "sourceLabels": [NODE_NAME], "regex": _node_regex(names),
                        "targetLabel": label, "replacement": value.replace("$", "$$")})
    out.append({"action": "labeldrop", "regex": OPERATOR_LABELS})
    return out


def monitor(model: FleetModel, hosts: Sequence[Host]) -> dict:
    k = model.kubernetes
    endpoint = {"port": PORT_NAME, "path": "/metrics", "interval": model.prometheus.scrape_interval,
                "scrapeTimeout": model.prometheus.scrape_timeout, "relabelings": relabelings(model, hosts)}
    endpoints = "endpoints" if k.monitor == "ServiceMonitor" else "podMetricsEndpoints"
    return {"apiVersion": MONITORING_API, "kind": k.monitor,
            "metadata": _metadata(model, EXPORTER, "exporter", k.prometheus_labels),
            "spec": {"selector": {"matchLabels": own_labels(model, "exporter")}, endpoints: [endpoint]}}


def prometheus_rules(model: FleetModel, folder: str, rule_files: Sequence[str]) -> dict[str, dict]:
    """One PrometheusRule per rule file the folder's Prometheus loads; its spec is the rule file's
    document itself."""
    documents = rules.generate(model)
    out = {}
    for path in rule_files:
        document = documents[path]
        stem = PurePosixPath(path).stem
        out[f"{folder}/prometheusrule-{stem}.yaml"] = {
            "apiVersion": MONITORING_API, "kind": "PrometheusRule",
            "metadata": _metadata(model, f"gpuobs-{model.name}-{stem}", "rules", model.kubernetes.prometheus_labels),
            "spec": document}
    return out


def dashboard_configmaps(model: FleetModel, folder: str) -> dict[str, dict]:
    """One ConfigMap per dashboard. The data key is the file Grafana's sidecar writes, all
    fleets' dashboards into one folder: it names the fleet."""
    out = {}
    for file, document in grafana.dashboards(model).items():
        stem = PurePosixPath(file).stem
        out[f"{folder}/dashboard-{stem}.yaml"] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(model, f"gpuobs-{model.name}-dashboard-{stem}", "dashboard",
                                  model.kubernetes.dashboard_labels),
            "data": {f"gpuobs-{model.name}-{file}": to_json(document)}}
    return out


def secret_path(model: FleetModel, file: str) -> str:
    """Where Alertmanager reads a secret file the spec names: in the Secret that holds it."""
    secret, key = next((s, k) for f, s, k in model.kubernetes.alertmanager_secrets if f == file)
    return f"{SECRETS_DIR}/{secret}/{key}"


def mounted_secrets(model: FleetModel) -> list[str]:
    return sorted({secret for _, secret, _ in model.kubernetes.alertmanager_secrets})


def alertmanager_secret(model: FleetModel) -> dict:
    """alertmanager.yaml for Alertmanager.spec.configSecret; it holds no secret, only the paths
    of the mounted Secrets that do (listed in an annotation, for Alertmanager.spec.secrets)."""
    text = to_yaml(alertmanager.config(model, lambda file: secret_path(model, file)), model.source)
    secrets = mounted_secrets(model)
    annotations = {MOUNT_ANNOTATION: ",".join(secrets)} if secrets else None
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": _metadata(model, model.kubernetes.alertmanager_config_secret, "alertmanager-config",
                                  annotations=annotations),
            "type": "Opaque", "stringData": {ALERTMANAGER_CONFIG_KEY: text}}


def kustomization(model: FleetModel, files) -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": model.kubernetes.namespace,
            "resources": sorted(PurePosixPath(path).name for path in files)}


def generate(model: FleetModel) -> dict[str, object]:
    """kubernetes/ for a fleet with one Prometheus; kubernetes/<cluster>/ per cluster when each
    cluster has its own (one Kubernetes cluster, one kube-prometheus-stack each), holding that
    cluster's hosts and the rule files its Prometheus loads."""
    if model.kubernetes is None:
        return {}
    if not model.per_cluster:
        return _folder(model, FOLDER, model.hosts, rules.served_rule_files(model))
    files: dict[str, object] = {}
    for server in model.servers:  # one per cluster; its replicas share the cluster's rules
        hosts = [h for h in model.hosts if h.cluster == server.cluster]
        files.update(_folder(model, f"{FOLDER}/{server.cluster}", hosts,
                             rules.served_rule_files(model, server.cluster)))
    return files


def dcgm_monitor(model: FleetModel, hosts: Sequence[Host]) -> dict:
    """A ServiceMonitor for the GPU Operator's dcgm-exporter Service, with the same target labels
    (and scrape job) the static config gives these hosts."""
    k = model.kubernetes
    d = k.dcgm_exporter
    endpoint = {"port": d.port, "path": "/metrics", "interval": model.prometheus.scrape_interval,
                "scrapeTimeout": model.prometheus.scrape_timeout, "relabelings": relabelings(model, hosts)}
    return {"apiVersion": MONITORING_API, "kind": "ServiceMonitor",
            "metadata": _metadata(model, f"gpuobs-{model.name}-dcgm-exporter", "dcgm-exporter", k.prometheus_labels),
            "spec": {"selector": {"matchLabels": dict(d.service_labels)},
                     "namespaceSelector": {"matchNames": [d.namespace]}, "endpoints": [endpoint]}}


def dcgm_counters_configmap(model: FleetModel, hosts: Sequence[Host]) -> dict:
    """The counters CSV as the GPU Operator takes it: set `dcgmExporter.config.name` to this name."""
    exporter = hosts[0].exporter
    d = model.kubernetes.dcgm_exporter
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"gpuobs-{model.name}-dcgm-counters", "namespace": d.namespace,
                         "labels": own_labels(model, "dcgm-exporter")},
            "data": {dcgm_counters.CONFIGMAP_KEY: dcgm_counters.counters_csv(model, exporter)}}


def _folder(model: FleetModel, folder: str, hosts: Sequence[Host], rule_files: Sequence[str]) -> dict[str, object]:
    k = model.kubernetes
    own = [h for h in hosts if h.exporter.kind == GPUOBS]
    dcgm = [h for h in hosts if h.exporter.kind == DCGM_EXPORTER]
    files: dict[str, object] = {}
    if own:
        files[f"{folder}/exporter-daemonset.yaml"] = daemonset(model, own, dcgm)
        files[f"{folder}/exporter-{k.monitor.lower()}.yaml"] = monitor(model, own)
        if k.monitor == "ServiceMonitor":
            files[f"{folder}/exporter-service.yaml"] = service(model)
    if dcgm:
        files[f"{folder}/dcgm-exporter-servicemonitor.yaml"] = dcgm_monitor(model, dcgm)
    if k.create_namespace:
        files[f"{folder}/namespace.yaml"] = namespace(model)
    files.update(prometheus_rules(model, folder, rule_files))
    files.update(dashboard_configmaps(model, folder))
    if model.alertmanager is not None:
        files[f"{folder}/alertmanager-config.yaml"] = alertmanager_secret(model)
    files[f"{folder}/kustomization.yaml"] = kustomization(model, files)
    if dcgm:
        # In the GPU Operator's namespace, outside the kustomization that moves objects to the monitoring one.
        files[f"{folder}/gpu-operator/dcgm-counters-configmap.yaml"] = dcgm_counters_configmap(model, dcgm)
    return files
