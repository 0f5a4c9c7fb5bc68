"""The resolved fleet model: immutable, every default filled in, ready for the generators."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuobs import links
from gpuobs.alerts import ALERTS, AlertDef, is_enabled
from gpuobs.catalog import DCGM_EXPORTER, DEFAULT_PORTS, GPUOBS, Profile, dcgm_counters, exporter_profile
from gpuobs.gpus import GpuModel
from gpuobs.own_rules import OwnRules, own_rules
from gpuobs.promql import seconds
from gpuobs.spec.gpu_models import known_models
from gpuobs.spec.schema import Alertmanager, Efficiency, Exporter, Fleet, Grafana, Kubernetes, RemoteWrite
from gpuobs.spec.tier_checks import per_cluster
from gpuobs.thresholds import Thresholds, resolved_thresholds


@dataclass(frozen=True)
class ExporterSetup:
    """One way GPU metrics are served (an exporter kind and its configuration), read by one scrape job."""

    profile: Profile
    job: str
    version: int | None  # dcgm-exporter's major version
    counters_name: str  # dcgm-exporter: default, gpuobs or custom; empty for other kinds
    counters: tuple[str, ...]  # dcgm-exporter: the fields its counters CSV enables

    @property
    def kind(self) -> str:
        return self.profile.name


@dataclass(frozen=True)
class Host:
    name: str
    cluster: str
    address: str
    exporter: ExporterSetup
    exporter_port: int
    node_exporter_port: int | None
    team: str | None
    labels: tuple[tuple[str, str], ...]  # cluster labels, then the host's own
    gpu: GpuModel
    gpu_count: int
    mig: tuple[tuple[int, tuple[str, ...]], ...]  # (GPU index, instance profiles)

    def target(self, port: int) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{port}"

    @property
    def exporter_target(self) -> str:
        return self.target(self.exporter_port)


@dataclass(frozen=True)
class Alert:
    definition: AlertDef
    severity: str
    for_: str
    labels: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class PrometheusSettings:
    scrape_interval: str
    scrape_timeout: str
    evaluation_interval: str
    retention: str
    service_discovery: str
    host_label: str
    self_address: str
    alertmanagers: tuple[str, ...]
    external_labels: tuple[tuple[str, str], ...]
    exporter_stale_seconds: int


Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExporterDeployment:
    """gpuobs-exporter's DaemonSet."""

    image: str
    image_pull_policy: str
    node_selector: Pairs
    tolerations: tuple[Pairs, ...]  # each in Kubernetes' field names and order
    runtime_class: str | None
    mig_monitor: bool
    requests: Pairs
    limits: Pairs
    pod_resources: bool = False  # --kubernetes-pod-resources: the kubelet's socket mounted
    process_metrics: bool = False  # --process-metrics: the node's PID namespace


@dataclass(frozen=True)
class DcgmExporterService:
    """Where the GPU Operator's dcgm-exporter runs."""

    namespace: str
    service_labels: Pairs
    port: str


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str
    create_namespace: bool
    monitor: str  # ServiceMonitor or PodMonitor
    prometheus_labels: Pairs
    dashboard_labels: Pairs
    exporter: ExporterDeployment | None
    dcgm_exporter: DcgmExporterService
    alertmanager_config_secret: str
    alertmanager_secrets: tuple[tuple[str, str, str], ...]  # (file the spec names, Secret, key)


@dataclass(frozen=True)
class RemoteWriteTarget:
    url: str
    basic_auth: tuple[str, str] | None  # (username, password file)
    bearer_token_file: str | None
    queue: tuple[tuple[str, object], ...]  # queue_config keys the spec sets, in Prometheus' names


@dataclass(frozen=True)
class ClusterServer:
    """One cluster's own Prometheus (one per replica when it runs as an HA pair)."""

    cluster: str
    address: str | None
    replicas: tuple[str, ...]
    external_labels: tuple[tuple[str, str], ...]  # the fleet's, the cluster's own, cluster=<name>; sorted
    remote_write: tuple[RemoteWriteTarget, ...]


@dataclass(frozen=True)
class GlobalTier:
    scrape_interval: str
    scrape_timeout: str
    evaluation_interval: str
    external_labels: tuple[tuple[str, str], ...]
    remote_write: tuple[RemoteWriteTarget, ...]


@dataclass(frozen=True)
class Team:
    name: str
    receivers: tuple[tuple[str, str | None], ...]  # (severity, receiver or None for nowhere)


@dataclass(frozen=True)
class EfficiencySettings:
    """Prices and the idle rule, resolved: every cluster and GPU model of the fleet has a price (0
    where the spec gives none), so the cost rules never drop a GPU for want of one."""

    currency: str
    energy_price: tuple[tuple[str, float], ...]  # (cluster, price per kWh)
    gpu_hour_price: tuple[tuple[str, float], ...]  # (GPU model, price per GPU-hour)
    carbon_intensity: tuple[tuple[str, float], ...]  # (cluster, gCO2 per kWh): the clusters that give one
    idle_threshold: float  # busy fraction below which an allocated GPU is idle
    idle_for: str  # how long it stays so before the idle-allocation alert counts it


@dataclass(frozen=True)
class FleetModel:
    name: str
    source: str  # the spec file name that headers name (not its folder: output must not depend on it)
    exporters: tuple[ExporterSetup, ...]  # distinct setups, in order of first use
    clusters: tuple[str, ...]
    hosts: tuple[Host, ...]
    teams: tuple[Team, ...]
    thresholds: tuple[tuple[GpuModel, Thresholds], ...]  # one per GPU model in the fleet
    alerts: tuple[Alert, ...]  # enabled alerts only, in catalog order
    prometheus: PrometheusSettings
    alertmanager: Alertmanager | None  # validated spec section, read-only here
    grafana: Grafana | None  # likewise
    runbook_url: str
    grafana_url: str
    kubernetes: KubernetesSettings | None
    servers: tuple[ClusterServer, ...] = ()  # empty: one Prometheus for the whole fleet
    global_tier: GlobalTier | None = None
    own_rules: OwnRules = OwnRules()  # the spec's recording rules and alerts of its own
    efficiency: EfficiencySettings | None = None

    @property
    def per_cluster(self) -> bool:
        return bool(self.servers)

    @property
    def gpu_models(self) -> tuple[GpuModel, ...]:
        return tuple(gpu for gpu, _ in self.thresholds)

    def hosts_of(self, exporter: ExporterSetup) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.exporter is exporter)

    def models_of(self, exporter: ExporterSetup) -> tuple[GpuModel, ...]:
        """GPU models of the hosts this setup serves, in the fleet's model order."""
        used = {h.gpu.key for h in self.hosts_of(exporter)}
        return tuple(gpu for gpu in self.gpu_models if gpu.key in used)

    def alert(self, name: str) -> Alert | None:
        return next((a for a in self.alerts if a.name == name), None)

    def dashboard_uid(self, dashboard: str) -> str:
        return links.dashboard_uid(self.name, dashboard)


def default_scrape_timeout(scrape_interval: str) -> str:
    return "10s" if seconds(scrape_interval) >= 10 else scrape_interval


def _remote_write(endpoints: list[RemoteWrite]) -> tuple[RemoteWriteTarget, ...]:
    return tuple(RemoteWriteTarget(
        url=e.url, basic_auth=(e.basic_auth.username, e.basic_auth.password_file) if e.basic_auth else None,
        bearer_token_file=e.bearer_token_file,
        queue=tuple((k, v) for k, v in e.queue.model_dump().items() if v is not None) if e.queue else (),
    ) for e in endpoints)


def _tiers(fleet: Fleet) -> tuple[tuple[ClusterServer, ...], GlobalTier | None]:
    if not per_cluster(fleet):
        return (), None
    p = fleet.prometheus
    servers = []
    for cluster in fleet.clusters:
        own = cluster.prometheus
        labels = {**p.external_labels, **(own.external_labels if own else {}), "cluster": cluster.name}
        servers.append(ClusterServer(
            cluster=cluster.name, address=own.address if own else None, replicas=tuple(own.replicas) if own else (),
            external_labels=tuple(sorted(labels.items())), remote_write=_remote_write(own.remote_write if own else []),
        ))
    g = fleet.global_
    if g is None:
        return tuple(servers), None
    interval = g.scrape_interval or p.scrape_interval
    return tuple(servers), GlobalTier(
        scrape_interval=interval, scrape_timeout=default_scrape_timeout(interval),
        evaluation_interval=g.evaluation_interval or p.evaluation_interval,
        external_labels=tuple(sorted({**p.external_labels, **g.external_labels}.items())),
        remote_write=_remote_write(g.remote_write),
    )


_BASE_JOBS = {GPUOBS: "gpu-exporter", DCGM_EXPORTER: "dcgm-exporter", "nvidia_gpu_exporter": "nvidia-gpu-exporter"}


def _setup_key(exporter: Exporter, enabled: list[AlertDef]) -> tuple:
    if exporter.kind != DCGM_EXPORTER:
        return exporter.kind, None, "", ()
    version = exporter.version or 4
    return exporter.kind, version, *dcgm_counters(exporter.counters, version, enabled)


def _setups(keys: list[tuple]) -> dict[tuple, ExporterSetup]:
    """One setup per distinct key; job names say what tells same-kind setups apart."""
    distinct = list(dict.fromkeys(keys))
    setups = {}
    customs = [k for k in distinct if k[2] == "custom"]
    for key in distinct:
        kind, version, counters_name, fields = key
        same_kind = [k for k in distinct if k[0] == kind]
        parts = [_BASE_JOBS[kind]]
        if len({k[1] for k in same_kind}) > 1:
            parts.append(f"v{version}")
        if len({k[3] for k in same_kind if k[1] == version}) > 1:
            parts.append(counters_name + (str(customs.index(key) + 1) if counters_name == "custom" else ""))
        setups[key] = ExporterSetup(exporter_profile(kind, version, fields), "-".join(parts), version, counters_name,
                                    fields)
    return setups


def build_model(fleet: Fleet, name: str, source: str) -> FleetModel:
    owner = {}
    for team in fleet.teams:
        for host in fleet.hosts:
            if host.cluster in team.clusters or host.name in team.hosts:
                owner[host.name] = team.name
    cluster_labels = {c.name: tuple(sorted(c.labels.items())) for c in fleet.clusters}
    models = known_models(fleet)
    enabled = [d for d in ALERTS if is_enabled(d, fleet)]
    cluster_exporter = {c.name: c.exporter for c in fleet.clusters}
    keys = [_setup_key(h.exporter or cluster_exporter[h.cluster], enabled) for h in fleet.hosts]
    setups = _setups(keys)

    hosts = []
    for h, key in zip(fleet.hosts, keys, strict=True):
        mig = ()
        if h.gpus.mig is not None:
            indices = h.gpus.mig.gpus if h.gpus.mig.gpus is not None else range(h.gpus.count)
            mig = tuple((i, tuple(h.gpus.mig.profiles)) for i in sorted(set(indices)))
        hosts.append(Host(
            name=h.name, cluster=h.cluster, address=h.address or h.name, exporter=setups[key],
            exporter_port=h.exporter_port or DEFAULT_PORTS[key[0]],
            node_exporter_port=h.node_exporter_port, team=owner.get(h.name),
            labels=cluster_labels[h.cluster] + tuple(sorted(h.labels.items())),
            gpu=models[h.gpus.model], gpu_count=h.gpus.count, mig=mig,
        ))

    used = [m for m in models.values() if any(h.gpu is m for h in hosts)]
    thresholds = [(gpu, resolved_thresholds(gpu, fleet.thresholds.get(gpu.key))) for gpu in used]

    alerts = []
    for definition in ALERTS:
        if not is_enabled(definition, fleet):
            continue
        override = fleet.alerts.get(definition.name)
        section_for = definition.section_for and definition.section_for(getattr(fleet, definition.section))
        alerts.append(Alert(
            definition=definition,
            severity=(override and override.severity) or definition.severity,
            for_=(override and override.for_) or section_for or definition.for_,
            labels=tuple(sorted(override.labels.items())) if override else (),
        ))

    p = fleet.prometheus
    servers, global_tier = _tiers(fleet)
    return FleetModel(
        name=name, source=source, exporters=tuple(setups.values()),
        clusters=tuple(c.name for c in fleet.clusters), hosts=tuple(hosts),
        teams=tuple(Team(t.name, tuple(t.receivers.items())) for t in fleet.teams),
        thresholds=tuple(thresholds), alerts=tuple(alerts),
        prometheus=PrometheusSettings(
            scrape_interval=p.scrape_interval,
            scrape_timeout=p.scrape_timeout or default_scrape_timeout(p.scrape_interval),
            evaluation_interval=p.evaluation_interval, retention=p.retention,
            service_discovery=p.service_discovery, host_label=p.host_label, self_address=p.self_address,
            alertmanagers=tuple(p.alertmanagers), external_labels=tuple(sorted(p.external_labels.items())),
            exporter_stale_seconds=math.ceil(seconds(p.exporter_stale_after)),
        ),
        alertmanager=fleet.alertmanager, grafana=fleet.grafana,
        runbook_url=fleet.links.runbook_url, grafana_url=fleet.links.grafana_url,
        servers=servers, global_tier=global_tier, own_rules=own_rules(fleet.rules, p.scrape_interval),
        kubernetes=_kubernetes(fleet.kubernetes) if fleet.kubernetes else None,
        efficiency=_efficiency(fleet.efficiency, fleet, used) if fleet.efficiency else None,
    )


def _efficiency(e: Efficiency, fleet: Fleet, models: list[GpuModel]) -> EfficiencySettings:
    own = e.clusters

    def energy_price(cluster: str) -> float:
        price = own[cluster].energy_price_per_kwh if cluster in own else None
        return price if price is not None else (e.energy_price_per_kwh or 0.0)

    clusters = [c.name for c in fleet.clusters]
    return EfficiencySettings(
        currency=e.currency,
        energy_price=tuple((c, energy_price(c)) for c in clusters),
        gpu_hour_price=tuple((m.key, e.gpu_hour_price.get(m.key, 0.0)) for m in models),
        carbon_intensity=tuple((c, own[c].carbon_intensity) for c in clusters
                               if c in own and own[c].carbon_intensity is not None),
        idle_threshold=e.idle.threshold, idle_for=e.idle.for_,
    )


def _kubernetes(k: Kubernetes) -> KubernetesSettings:
    e = k.exporter

    def amounts(part) -> Pairs:
        return tuple((name, value) for name, value in (("cpu", part.cpu), ("memory", part.memory)) if value)

    deployment = None if e is None else ExporterDeployment(
        image=e.image, image_pull_policy=e.image_pull_policy, node_selector=tuple(sorted(e.node_selector.items())),
        tolerations=tuple(tuple((name, value) for name, value in t.model_dump().items() if value is not None)
                          for t in e.tolerations),
        runtime_class=e.runtime_class, mig_monitor=bool(e.mig_monitor),
        requests=amounts(e.resources.requests), limits=amounts(e.resources.limits),
        pod_resources=e.pod_resources, process_metrics=e.process_metrics)
    d = k.dcgm_exporter
    return KubernetesSettings(
        namespace=k.namespace, create_namespace=k.create_namespace, monitor=k.monitor,
        prometheus_labels=tuple(sorted(k.prometheus_labels.items())),
        dashboard_labels=tuple(sorted(k.dashboard_labels.items())),
        exporter=deployment,
        dcgm_exporter=DcgmExporterService(d.namespace, tuple(sorted(d.service_labels.items())), d.port),
        alertmanager_config_secret=k.alertmanager.config_secret,
        alertmanager_secrets=tuple(sorted((path, ref.secret, ref.key) for path, ref in k.alertmanager.secrets.items())),
    )
