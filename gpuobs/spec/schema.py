"""The spec's classes: what a YAML spec may contain, and what a Python spec builds.

Pydantic checks shape and types and rejects unknown keys (a typo must not pass silently);
cross-references between sections are checked in spec/checks.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from gpuobs.alerts import ACTIONS, SEVERITIES
from gpuobs.alerts import BY_NAME as ALERTS_BY_NAME
from gpuobs.catalog import GPUOBS, KINDS
from gpuobs.errors import shown
from gpuobs.gpus import GPU_MODELS
from gpuobs.spec import kube
from gpuobs.spec.recording import init_recorded

# Every pattern here is matched whole (fullmatch): `$` would also accept a trailing line break.
_DURATION = re.compile(r"0|(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>\d{1,5})")
_URL = re.compile(r"https?://[!-~]+")  # printable ASCII, no space
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # and the line separators YAML breaks lines at
_TEMPLATE = "{{"  # Prometheus expands alert labels and annotations as Go templates from here on
_CURRENCY = re.compile(r"[A-Z]{3}")


class Secret:
    """Marks a field whose value may hold a secret (a token in a webhook URL): no message quotes it."""


SECRET = Secret()


def _duration(value: str) -> str:
    if not value or not _DURATION.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Prometheus duration; use e.g. 30s, 5m, 1h30m")
    return value


def _label_name(value: str) -> str:
    if not _LABEL_NAME.fullmatch(value) or value.startswith("__"):
        raise ValueError(f"{shown(value)} is not a valid label name; use letters, digits and _, not starting "
                         "with a digit or __")
    return value


def _label_value(value: str) -> str:
    if not value:
        raise ValueError("an empty label value removes the label in Prometheus; give a value or leave the label out")
    return _one_line(value, "a label value")


def _alert_label_value(value: str) -> str:
    return _no_template(_label_value(value), "alert labels")


def _one_line(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{shown(value)}: {what} must be one line, without control characters")
    return value


def _text_line(value: str) -> str:
    return _one_line(value, "this text")


def _no_template(value: str, where: str) -> str:
    if _TEMPLATE in value:
        raise ValueError(f"{shown(value)} contains '{{{{', which Prometheus expands as a template in {where}; "
                         "write the text without it")
    return value


def _name(value: str) -> str:
    if not NAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid name; use lower-case letters, digits, '.', '_' and '-'")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an ISO 4217 currency code; use its three capital letters, "
                         "e.g. USD, EUR, GBP")
    return value


def _address(value: str) -> str:
    if ":" in value:  # only an IPv6 address may contain colons; a port belongs in exporter_port
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            pass
    elif _HOSTNAME.fullmatch(value):
        return value
    raise ValueError(f"{shown(value)} is not a host name or IP address (no scheme, no port: set exporter_port)")


def _url(value: str) -> str:
    """An http(s) URL written into generated files as it is: so without credentials, which would
    be there in plain text (and, for links, in every alert's annotations)."""
    if not _URL.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an http(s) URL (ASCII, no spaces or line breaks)")
    if _has_userinfo(value):
        raise ValueError("a URL here must not carry credentials (user:password@): they would be written in plain "
                         "text into the generated files; give them to the tool that keeps secrets instead (for "
                         "Grafana's data source: basicAuth with secureJsonData, from an environment variable)")
    return _no_template(value, "alert annotations").rstrip("/")


def _has_userinfo(url: str) -> bool:
    return "@" in url.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]


def _secret_url(value: str, what: str, instead: str) -> str:
    """A URL that may hold a token (in its path or query): refused without being quoted."""
    if not _URL.fullmatch(value):
        raise ValueError(f"{what} is not an http(s) URL (ASCII, no spaces or line breaks); not quoted here, "
                         "as it may hold a secret")
    if _has_userinfo(value):
        raise ValueError(f"{what} must not carry credentials (user:password@); use {instead}")
    return value.rstrip("/")


def _host_port(value: str) -> str:
    match = _HOST_PORT.fullmatch(value)
    if not match or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{shown(value)} is not host:port (no scheme, no path; an IPv6 address in brackets)")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
HostPort = Annotated[str, AfterValidator(_host_port)]
LabelName = Annotated[str, AfterValidator(_label_name)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Name = Annotated[str, AfterValidator(_name)]
Address = Annotated[str, AfterValidator(_address)]
Url = Annotated[str, AfterValidator(_url)]
Labels = dict[LabelName, LabelValue]
AlertLabels = dict[LabelName, Annotated[str, AfterValidator(_alert_label_value)]]  # no templates: see _TEMPLATE
Line = Annotated[str, AfterValidator(_text_line)]
StrictInt = Annotated[int, Field(strict=True)]  # YAML `true` must not pass as 1


def _gpu_model(value: str, info: ValidationInfo) -> str:
    """Checked here when the loader says which models the spec defines, so an unknown model is
    reported with the file's other problems; spec/checks.py checks it again for Python specs."""
    known = (info.context or {}).get("gpu_models")
    if known is not None and value not in known:
        raise ValueError(unknown_model_message(value, known))
    return value


def unknown_model_message(value: str, known) -> str:
    return f"unknown GPU model {shown(value)}; known: {', '.join(known)} (or describe it under gpu_models)"


GpuModelName = Annotated[str, AfterValidator(_gpu_model),
                         Field(min_length=1, description="a built-in model or one of gpu_models",
                               json_schema_extra={"examples": list(GPU_MODELS)})]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def __init__(self, /, **data):
        """A Python spec's objects are recorded with their lines (spec/recording.py)."""
        init_recorded(self, data, super().__init__)

    # As RootModel does: nested values are still validated by pydantic alone (with the loader's
    # context), not through this __init__, which only a spec's own calls go through.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


class MigLayout(Strict):
    """MIG instances to expect on some or all GPUs of a host."""

    profiles: list[str] = Field(min_length=1, description="GPU instance profiles, e.g. [3g.40gb, 3g.40gb]")
    gpus: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        None, description="GPU indices partitioned this way; all GPUs of the host when left out")


class Gpus(Strict):
    model: GpuModelName
    count: StrictInt = Field(ge=1, le=64)
    mig: MigLayout | None = None


class Exporter(Strict):
    """What serves the GPU metrics of a cluster's (or a host's) nodes."""

    kind: Literal[KINDS] = Field(GPUOBS, description="gpuobs (gpuobs-exporter), dcgm-exporter "  # type: ignore[valid-type]
                                 "(NVIDIA's, as the GPU Operator runs it) or nvidia_gpu_exporter")
    version: Literal[3, 4] | None = Field(None, description="dcgm-exporter's major version: 3 labels the node "
                                          "`Hostname`, 4 `hostname` (default 4)")
    counters: Literal["default", "gpuobs"] | list[str] | None = Field(
        None, description="dcgm-exporter's counters CSV: default (as shipped), gpuobs (the default plus every "
        "field the enabled alerts and dashboards read; gpuobs generates it) or a list of DCGM field names "
        "(default: gpuobs)")


class GpuModelSpec(Strict):
    """A GPU model of your own, for GPUs the built-in list lacks; thresholds can be set as for any model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")] = Field(
        description="the name hosts[].gpus.model uses: letters, digits, '.', '_' and '-'")
    nvml_name: Line | None = Field(None, min_length=1, description="the name NVML reports (dcgm-exporter's "
                                  "modelName), e.g. 'NVIDIA A800 80GB PCIe'")
    nvml_pattern: str | None = Field(None, min_length=1, description="a regular expression matching the whole "
                                     "NVML name, where several names are one model")
    power_limit_watts: float = Field(gt=0, le=5000, description="default enforced power limit")
    gpu_temp_warning: float = Field(ge=0, le=150, description="C; used where the GPU reports no limit itself")
    gpu_temp_critical: float = Field(ge=0, le=150, description="C: the GPU's max operating temperature")
    memory_mib: StrictInt = Field(ge=1, description="framebuffer size as NVML reports it")
    nvlink_links: StrictInt = Field(0, ge=0, le=72)
    reports_temp_margin: bool = Field(False, description="the driver reports thresholds relative to a T.Limit")
    row_remapping: bool = Field(True, description="false for GPUs that retire pages instead (Volta, Turing)")
    mig_profiles: list[MigProfileSpec] = Field(default_factory=list)


class MigProfileSpec(Strict):
    name: str = Field(pattern=r"^[1-9]g\.[0-9]+gb(\+[a-z0-9.]+)?$", description="as NVML names it, e.g. 3g.40gb")
    compute_slices: StrictInt = Field(ge=1, le=8)
    memory_slices: StrictInt = Field(ge=1, le=8)


GpuModelSpec.model_rebuild()


class Host(Strict):
    name: Name
    cluster: Name
    address: Address | None = Field(None, description="where the exporters listen; defaults to name")
    exporter: Exporter | None = Field(None, description="overrides the cluster's exporter for this host")
    exporter_port: StrictInt | None = Field(None, ge=1, le=65535, description="default: 9400 (gpuobs, "
                                            "dcgm-exporter), 9835 (nvidia_gpu_exporter)")
    node_exporter_port: StrictInt | None = Field(9100, ge=1, le=65535,
                                           description="null when the host runs no node-exporter")
    labels: Labels = Field(default_factory=dict, description="extra target labels on every series")
    gpus: Gpus


class Cluster(Strict):
    name: Name
    labels: Labels = Field(default_factory=dict)
    exporter: Exporter = Field(default_factory=Exporter, description="what serves GPU metrics on its hosts")
    prometheus: ClusterPrometheus | None = Field(None, description="this cluster's own Prometheus; with it "
                                                 "(or a global tier) every cluster gets a Prometheus of its own")


class Team(Strict):
    name: Name
    clusters: list[Name] = Field(default_factory=list, description="clusters whose hosts the team owns")
    hosts: list[Name] = Field(default_factory=list, description="single hosts the team owns")
    receivers: dict[Literal[SEVERITIES], Name | None] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="the team's receiver per severity, before the fleet's")


class Thresholds(Strict):
    """Per GPU model; anything left out keeps the model's default (see gpuobs/gpus.py)."""

    gpu_temp_warning: float | None = Field(None, ge=0, le=150, description="C; fallback when the GPU "
                                           "reports neither its max operating temperature nor a margin")
    gpu_temp_critical: float | None = Field(None, ge=0, le=150)
    gpu_temp_max_op_offset_warning: float | None = Field(
        None, ge=0, le=30, description="C below the GPU's reported max operating temperature to warn at")
    gpu_temp_margin_warning: float | None = Field(None, ge=-20, le=50,
                                                  description="warn at this T.Limit margin (C) or less")
    gpu_temp_margin_critical: float | None = Field(None, ge=-20, le=50)
    power_warning_ratio: float | None = Field(None, gt=0, le=3,
                                              description="fraction of the enforced power limit")
    power_critical_ratio: float | None = Field(None, gt=0, le=3)
    power_limit_watts: float | None = Field(None, gt=0, le=5000,
                                            description="fallback when no enforced limit is reported")
    memory_used_warning_ratio: float | None = Field(None, gt=0, le=1)
    ecc_correctable_warning: StrictInt | None = Field(None, ge=1, description="new errors in 5m")
    nvlink_errors_warning: StrictInt | None = Field(None, ge=0, description="alert above this many in 5m")
    pcie_replay_warning: StrictInt | None = Field(None, ge=0, description="alert above this many in 5m")
    health_score_warning: float | None = Field(None, gt=0, le=1)
    thermal_prediction_horizon: Duration | None = None


class AlertOverride(Strict):
    enabled: bool | None = None  # None: on (an alert off by default is turned on by naming it)
    severity: Literal[SEVERITIES] | None = None  # type: ignore[valid-type]
    for_: Duration | None = Field(None, alias="for")
    labels: AlertLabels = Field(default_factory=dict)


class Prometheus(Strict):
    scrape_interval: Duration = "15s"
    scrape_timeout: Duration | None = Field(None, description="default: 10s, or the scrape interval "
                                            "when that is shorter")
    evaluation_interval: Duration = "15s"
    retention: Duration = Field("15d", description="retention the rules' windows were sized for; "
                                "written as guidance, set it on the server's command line")
    service_discovery: Literal["static", "file_sd"] = "static"
    host_label: LabelName = Field("host", description="target label naming the host on every series")
    self_address: HostPort = "localhost:9090"
    alertmanagers: list[HostPort] = Field(default_factory=lambda: ["localhost:9093"])
    external_labels: Labels = Field(default_factory=dict)
    exporter_stale_after: Duration = Field(
        "2m", description="GPUExporterStale counts an exporter stale once its last successful collection "
        "is older than this (its `for` comes on top); longer than the exporter's collection interval")


class Links(Strict):
    runbook_url: Url = Field("https://github.com/gpuobs/gpuobs/blob/main/docs/runbooks.md",
                             description="alerts link to <runbook_url>#<alertname>")
    grafana_url: Url = "http://localhost:3000"


# Keys that would carry a secret inline; a spec must name a file instead (file -> key).
INLINE_SECRETS = {"api_url": "api_url_file", "routing_key": "routing_key_file", "service_key": "service_key_file",
                  "auth_password": "auth_password_file", "auth_secret": "auth_password_file",
                  "password": "password_file", "bearer_token": "bearer_token_file",
                  "credentials": "bearer_token_file", "token": "bearer_token_file"}

FilePath = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$",
                                description="path of a file holding the secret, as the Alertmanager host sees it")]


def _webhook_url(value: str) -> str:
    return _secret_url(value, "a webhook URL", "bearer_token_file or basic_auth")


class BasicAuth(Strict):
    username: Line
    password_file: FilePath


def _remote_write_url(value: str) -> str:
    return _secret_url(value, "a remote_write URL", "basic_auth or bearer_token_file")


class RemoteWriteQueue(Strict):
    """Prometheus' queue_config for one endpoint; anything left out keeps Prometheus' default."""

    capacity: StrictInt | None = Field(None, ge=1, description="samples buffered per shard")
    min_shards: StrictInt | None = Field(None, ge=1)
    max_shards: StrictInt | None = Field(None, ge=1)
    max_samples_per_send: StrictInt | None = Field(None, ge=1)
    batch_send_deadline: Duration | None = None
    min_backoff: Duration | None = None
    max_backoff: Duration | None = None


class RemoteWrite(Strict):
    """An endpoint a Prometheus sends every sample to (a long-term store, or another Prometheus)."""

    url: Annotated[str, AfterValidator(_remote_write_url), SECRET]
    basic_auth: BasicAuth | None = None
    bearer_token_file: FilePath | None = None
    queue: RemoteWriteQueue | None = None


class ClusterPrometheus(Strict):
    """A cluster's own Prometheus: it scrapes only the cluster's hosts and runs its rules and alerts."""

    address: HostPort | None = Field(None, description="host:port where the global tier reaches it")
    replicas: list[Name] = Field(default_factory=list, description="an HA pair (or more): one prometheus.yml "
                                 "per replica, told apart by the external label `replica`")
    external_labels: Labels = Field(default_factory=dict, description="in addition to cluster=<name>")
    remote_write: list[RemoteWrite] = Field(default_factory=list)


class GlobalTier(Strict):
    """A global Prometheus that federates the clusters' cluster-level series and runs the fleet rules."""

    scrape_interval: Duration | None = Field(None, description="how often it federates; default: "
                                             "prometheus.scrape_interval")
    evaluation_interval: Duration | None = Field(None, description="default: prometheus.evaluation_interval")
    external_labels: Labels = Field(default_factory=dict)
    remote_write: list[RemoteWrite] = Field(default_factory=list)


Cluster.model_rebuild()  # its prometheus field names ClusterPrometheus, defined above


class Webhook(Strict):
    url: Annotated[str, AfterValidator(_webhook_url), SECRET]
    bearer_token_file: FilePath | None = None
    basic_auth: BasicAuth | None = None
    max_alerts: StrictInt = Field(0, ge=0, description="0: all alerts of the group")


class Slack(Strict):
    api_url_file: FilePath
    channel: Line | None = None


class PagerDuty(Strict):
    routing_key_file: FilePath = Field(description="Events API v2 integration key, in a file")


class Email(Strict):
    to: Line
    from_: Line = Field(alias="from")
    smarthost: HostPort = Field(description="host:port of the mail relay")
    auth_username: Line | None = None
    auth_password_file: FilePath | None = None
    require_tls: bool = True


class Receiver(Strict):
    """Exactly one of webhook, slack, pagerduty, email."""

    name: Name
    webhook: Webhook | None = None
    slack: Slack | None = None
    pagerduty: PagerDuty | None = None
    email: Email | None = None
    send_resolved: bool = True


Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
Action = Literal[ACTIONS]  # type: ignore[valid-type]


class Routing(Strict):
    """Who hears about what: by severity, plus extra receivers by action (the route continues)."""

    by_severity: dict[Severity, Name | None] = Field(
        description="receiver per severity; null sends that severity nowhere")
    by_action: dict[Action, Name] = Field(default_factory=dict, description="also notify these receivers")
    default_receiver: Name | None = Field(None, description="alerts no route matches; default: nowhere")
    group_by: list[LabelName] | None = Field(None, description="default: cluster, the host label, gpu")
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"
    mute_warnings_outside: Name | None = Field(None, description="a time interval; warnings outside it wait")


class TimeRange(Strict):
    start_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end_time: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class TimeInterval(Strict):
    name: Name
    weekdays: list[str] = Field(default_factory=list, description="e.g. monday:friday")
    times: list[TimeRange] = Field(default_factory=list)
    location: Line = "UTC"


class InhibitRule(Strict):
    """An inhibition of your own, in addition to the generated ones."""

    source: Labels = Field(min_length=1, description="labels of the inhibiting alert (exact values)")
    target: Labels = Field(min_length=1, description="labels of the inhibited alerts (exact values)")
    equal: list[LabelName] = Field(min_length=1, description="labels both must share; never empty, or one "
                                   "alert would silence the whole fleet")


class Alertmanager(Strict):
    receivers: list[Receiver] = Field(min_length=1)
    routing: Routing
    time_intervals: list[TimeInterval] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)


PANEL_TYPES = ("timeseries", "stat", "gauge", "bargauge", "table", "state-timeline", "heatmap")
# Grafana unit ids a custom panel may use (Grafana's own ids; a wrong one shows raw numbers).
UNITS = ("none", "short", "percent", "percentunit", "celsius", "fahrenheit", "watt", "kwatt", "mwatt", "joule",
         "watth", "kwatth", "volt", "amp", "hertz", "rotmhz", "rotghz", "bytes", "decbytes", "kbytes", "mbytes",
         "gbytes", "deckbytes", "decmbytes", "decgbytes", "bits", "Bps", "binBps", "bps", "KBs", "MBs", "GBs",
         "ns", "µs", "ms", "s", "m", "h", "d", "dtdurations", "dateTimeAsIso", "ops", "reqps", "rps", "wps",
         "iops", "cps", "locale", "bool", "bool_yes_no", "bool_on_off")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}|(dark-|semi-dark-|light-|super-light-)?(green|yellow|orange|red|blue|purple)"
                    r"|transparent|text")
_GRAFANA_MACROS = re.compile(r"\$__(rate_interval|interval|range|range_s|interval_ms)\b")


def _promql(value: str) -> str:
    import promql_parser  # imported here: only specs with custom panels pay for it

    try:
        promql_parser.parse(_GRAFANA_MACROS.sub("5m", value))
    except ValueError as exc:
        raise ValueError(f"does not parse as PromQL: {exc}") from None
    return value


def _unit(value: str) -> str:
    if value not in UNITS:
        raise ValueError(f"unknown Grafana unit {shown(value)}; known: {', '.join(UNITS)}")
    return value


def _color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Grafana colour; use green, yellow, orange, red, blue, purple "
                         "(optionally dark-, light-, ...) or #rrggbb")
    return value


class ThresholdStep(Strict):
    value: float
    color: Annotated[str, AfterValidator(_color)]


class PanelSpec(Strict):
    """A panel of your own: one PromQL query; $cluster, $host, $gpu and $__rate_interval work."""

    title: Line = Field(min_length=1)
    expr: Annotated[str, AfterValidator(_promql)]
    legend: Line = ""
    type: Literal[PANEL_TYPES] = "timeseries"  # type: ignore[valid-type]
    unit: Annotated[str, AfterValidator(_unit)] = "short"
    thresholds: list[ThresholdStep] = Field(default_factory=list, description="colour from each value upwards")
    description: str | None = None


class DashboardSpec(Strict):
    title: Line = Field(min_length=1)
    uid: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="default: from the title")
    tags: list[Line] = Field(default_factory=list)
    panels: list[PanelSpec] = Field(min_length=1)


class Grafana(Strict):
    prometheus_url: Url = Field("http://prometheus:9090", description="the provisioned data source's URL")
    folder: Line = Field("GPU fleet", min_length=1)
    dashboards: list[DashboardSpec] = Field(default_factory=list, description="dashboards of your own")
    panels: dict[Literal["fleet-overview", "gpu-detail", "health", "monitoring"], list[PanelSpec]] = Field(
        default_factory=dict, description="panels appended to a generated dashboard")


KubeName = Annotated[str, AfterValidator(kube.dns_subdomain)]
KubeLabels = Annotated[dict[Annotated[str, BeforeValidator(kube.label_key)],
                            Annotated[str, BeforeValidator(kube.label_value)]], BeforeValidator(kube.label_map)]
Quantity = Annotated[str, BeforeValidator(kube.quantity)]


class Toleration(Strict):
    """A Kubernetes toleration, in Kubernetes' own terms."""

    key: Annotated[str, BeforeValidator(kube.label_key)] | None = Field(None, description="taint key; "
                                                                        "left out with Exists: every taint")
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Annotated[str, BeforeValidator(kube.label_value)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="left out: every effect")


class ResourceAmounts(Strict):
    cpu: Quantity | None = Field(None, description="e.g. 100m; null: none")
    memory: Quantity | None = Field(None, description="e.g. 256Mi; null: none")


class Resources(Strict):
    """The exporter container's requests and limits; a part given replaces that part's default."""

    requests: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="50m", memory="64Mi"))
    limits: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="500m", memory="256Mi"))


class KubernetesExporter(Strict):
    """gpuobs-exporter as a DaemonSet on the GPU nodes."""

    image: Annotated[str, AfterValidator(kube.image)] = Field(
        description="the image built from exporters/Dockerfile, with a version tag or a digest")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    node_selector: KubeLabels = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"},
                                      description="labels of the nodes to run on: the GPU nodes")
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        description="taints of the GPU nodes the exporter tolerates")
    runtime_class: KubeName | None = Field(None, description="RuntimeClass that exposes the GPUs, e.g. nvidia")
    mig_monitor: bool | None = Field(
        None, description="read MIG instances: needs root with CAP_SYS_ADMIN; required when a host has MIG")
    pod_resources: Annotated[bool, Field(strict=True)] = Field(
        False, description="label GPU series with the pod holding the GPU (--kubernetes-pod-resources): mounts "
        "the kubelet's pod-resources socket and runs the exporter as root")
    process_metrics: Annotated[bool, Field(strict=True)] = Field(
        False, description="per-process GPU memory and utilization (--process-metrics): runs the exporter as "
        "root in the node's PID namespace")
    resources: Resources = Field(default_factory=Resources)


class SecretKey(Strict):
    secret: KubeName = Field(description="an existing Secret in the namespace")
    key: Annotated[str, AfterValidator(kube.data_key)]


class KubernetesAlertmanager(Strict):
    """Where the Alertmanager configuration and the receivers' secrets live on Kubernetes."""

    config_secret: KubeName = Field("alertmanager-gpuobs", description="name of the generated Secret holding "
                                    "alertmanager.yaml (the Alertmanager's configSecret)")
    secrets: Annotated[dict[FilePath, SecretKey], SECRET] = Field(
        default_factory=dict, description="every secret file a receiver names -> the existing Secret and key "
        "that holds it")


class KubernetesDcgmExporter(Strict):
    """Where NVIDIA's GPU Operator (or dcgm-exporter's Helm chart) runs dcgm-exporter, for the
    ServiceMonitor that scrapes it and the counters ConfigMap it reads."""

    namespace: Annotated[str, AfterValidator(kube.dns_label)] = Field(
        "gpu-operator", description="namespace of dcgm-exporter's Service (and of the counters ConfigMap)")
    service_labels: KubeLabels = Field(default_factory=lambda: {"app": "nvidia-dcgm-exporter"},
                                       description="labels of dcgm-exporter's Service")
    port: Annotated[str, AfterValidator(kube.port_name)] = Field("gpu-metrics",
                                                                 description="name of the Service's metrics port")


class Kubernetes(Strict):
    """Objects for a cluster run by prometheus-operator (kube-prometheus-stack)."""

    namespace: Annotated[str, AfterValidator(kube.dns_label)] = Field(
        "monitoring", description="namespace of every object: the one of kube-prometheus-stack")
    create_namespace: bool = Field(False, description="also generate the Namespace object")
    monitor: Literal["ServiceMonitor", "PodMonitor"] = "ServiceMonitor"
    prometheus_labels: KubeLabels = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="labels Prometheus selects PrometheusRules and ServiceMonitors/PodMonitors by")
    dashboard_labels: KubeLabels = Field(default_factory=lambda: {"grafana_dashboard": "1"},
                                         description="labels Grafana's dashboard sidecar looks for")
    exporter: KubernetesExporter | None = Field(None, description="gpuobs-exporter's DaemonSet; required when a "
                                                "host runs gpuobs-exporter")
    dcgm_exporter: KubernetesDcgmExporter = Field(default_factory=KubernetesDcgmExporter)
    alertmanager: KubernetesAlertmanager = Field(default_factory=KubernetesAlertmanager)


Price = Annotated[float, Field(ge=0)]


class ClusterEfficiency(Strict):
    energy_price_per_kwh: Price | None = Field(None, description="this cluster's price of a kWh; default: "
                                               "efficiency.energy_price_per_kwh")
    carbon_intensity: float | None = Field(None, ge=0, le=2000, description="grams of CO2 per kWh of this "
                                           "cluster's electricity; without it no carbon figure for the cluster")


class IdleAllocation(Strict):
    """When an allocated GPU counts as idle."""

    threshold: float = Field(0.05, ge=0, le=1, description="busy fraction (utilization, or engine activity of "
                             "a MIG instance) below which an allocated GPU is idle")
    for_: Duration = Field("1h", alias="for", description="how long it stays idle before the idle-allocation "
                           "alert counts it")


class Efficiency(Strict):
    """Who holds each GPU, what sits idle and what it costs: prices, carbon intensity and the idle rule."""

    currency: Annotated[str, AfterValidator(_currency)] = Field(description="ISO 4217 code every price is in, "
                                                                "e.g. USD")
    energy_price_per_kwh: Price | None = Field(None, description="price of a kWh in every cluster that sets none")
    gpu_hour_price: dict[str, Price] = Field(default_factory=dict, description="price of one GPU-hour, keyed "
                                             "by GPU model; a model left out costs energy only")
    clusters: dict[Name, ClusterEfficiency] = Field(default_factory=dict, description="per cluster name")
    idle: IdleAllocation = Field(default_factory=IdleAllocation)


class Fleet(Strict):
    """A GPU fleet: the one input every gpuobs output is generated from."""

    version: Literal[1] = 1
    name: Name | None = Field(None, description="output folder name; defaults to the spec file's stem")
    gpu_models: list[GpuModelSpec] = Field(default_factory=list, description="GPU models of your own")
    clusters: list[Cluster] = Field(min_length=1)
    hosts: list[Host] = Field(min_length=1)
    teams: list[Team] = Field(default_factory=list)
    thresholds: dict[str, Thresholds] = Field(default_factory=dict,
                                              description="keyed by GPU model")
    alerts: dict[str, AlertOverride] = Field(default_factory=dict, description="keyed by alert name: "
                                             + ", ".join(ALERTS_BY_NAME))
    prometheus: Prometheus = Field(default_factory=Prometheus)
    alertmanager: Alertmanager | None = Field(None, description="routing and receivers; without it no "
                                              "alertmanager.yml is generated")
    grafana: Grafana | None = Field(None, description="data source URL, folder, panels and dashboards of your own")
    links: Links = Field(default_factory=Links)
    global_: GlobalTier | None = Field(None, alias="global", description="a global Prometheus federating "
                                       "every cluster's; needs clusters[].prometheus.address")
    kubernetes: Kubernetes | None = Field(None, description="objects for kube-prometheus-stack; without it no "
                                          "kubernetes/ folder is generated")
    rules: OwnRules | None = Field(None, description="recording rules and alerts of your own, with their promtool "
                                   "cases")
    efficiency: Efficiency | None = Field(None, description="allocation, idle GPUs, energy, cost and carbon; "
                                          "without it no such rules or dashboard are generated")


# Below Fleet: the section's classes build on this module's types. All of them named here, as a
# Python spec's failures find a class by its name in this module (spec/python_spec.py).
from gpuobs.spec.own_rules import (  # noqa: E402, F401
    AlertCase,
    ExpectedAlert,
    ExpectedSample,
    InputSeries,
    OwnAlert,
    OwnRules,
    RecordingCase,
    RecordingRule,
)

Fleet.model_rebuild()


def json_schema() -> dict:
    schema = Fleet.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpuobs fleet spec"
    return schema
