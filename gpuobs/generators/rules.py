"""Prometheus recording and alerting rules, built from the model and the metric catalog.

Thresholds are recorded as per-GPU series (gpu:*_threshold:*) so alerts and dashboards share
them: a GPU's own reported limit (max operating temperature, enforced power limit) wins, and
the spec's per-model figure is the fallback. GPUs of models the spec does not name still get
the thresholds their own readings give.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuobs.alerts import render_annotation
from gpuobs.catalog import CLOCK_EVENT_BITS, HW_THROTTLE_REASONS
from gpuobs.links import ALERT_PANELS
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num, quote, regex_alternatives, sel
from gpuobs.spec.schema import seconds
from gpuobs.thresholds import default_thresholds

GPU_EXPORTER_JOB = "gpu-exporter"
FIRING_GPU_ALERTS = 'ALERTS{alertstate="firing", severity=~"critical|warning"}'
TEMPERATURE_BUCKETS = tuple(range(30, 101, 5))  # °C: upper bounds of the temperature distribution, then +Inf
TOP_GPUS = 10  # rows of the fleet overview's hottest and least healthy tables
# GPUThermalCriticalPredicted looks at GPUs at most this far below their critical threshold.
PREDICTION_NEAR_CELSIUS = 15
XID_WINDOW = "15m"


@dataclass(frozen=True)
class Names:
    """Metric and label names of the model's profile, plus the target labels gpuobs adds."""

    model: FleetModel

    def __getattr__(self, key: str) -> str:
        return self.model.profile.metric(key)

    @property
    def host(self) -> str:
        return self.model.prometheus.host_label

    def label(self, key: str) -> str:
        return self.model.profile.label(key)

    @property
    def mig_labels(self) -> str:
        return f"{self.label('mig_profile')}, {self.label('mig_instance')}"

    def per_gpu(self, expr: str) -> str:
        """One series per physical GPU: dcgm-exporter repeats GPU-level values on every MIG
        instance's series, which would otherwise raise one alert per instance."""
        return f"max without ({self.mig_labels}) ({expr})"

    def gpu(self, key: str, matcher: str = "") -> str:
        """A GPU-level metric, one series per physical GPU."""
        return self.per_gpu(sel(getattr(self, key), matcher))

    def gpu_increase(self, key: str, window: str = "5m", matcher: str = "") -> str:
        return self.per_gpu(f"increase({sel(getattr(self, key), matcher)}[{window}])")


def _catch_all(model: FleetModel):
    """Thresholds for GPUs of models the spec does not name: the model-independent defaults
    (ratios, margins); absolute per-model fallbacks are never used for them."""
    return default_thresholds(model.thresholds[0][0])


def _model_scopes(model: FleetModel):
    """(matcher, thresholds, use_fallbacks) per GPU model, then one catch-all for other models."""
    n = Names(model)
    model_label = n.label("model_name")
    for gpu, thresholds in model.thresholds:
        yield f"{model_label}={quote(gpu.nvml_name)}", thresholds, True
    others = regex_alternatives(gpu.nvml_name for gpu, _ in model.thresholds)
    yield f"{model_label}!~{quote(others)}", _catch_all(model), False


def threshold_rules(model: FleetModel) -> list[dict]:
    """One rule per threshold; its clauses per GPU model are joined by `or` (the model matchers
    are disjoint), because several rules recording one name and label set conflict."""
    n = Names(model)
    clauses: dict[str, list[str]] = {}

    def add(record: str, expr: str) -> None:
        clauses.setdefault(record, []).append(expr)

    for matcher, t, fallbacks in _model_scopes(model):
        warn = f"{n.gpu('gpu_max_op_temp', matcher)} - {num(t.gpu_temp_max_op_offset_warning)}"
        crit = n.gpu("gpu_max_op_temp", matcher)
        if fallbacks and t.gpu_temp_warning is not None:
            warn += f"\n  or\n  0 * {n.gpu('gpu_temp', matcher)} + {num(t.gpu_temp_warning)}"
        if fallbacks and t.gpu_temp_critical is not None:
            crit += f"\n  or\n  0 * {n.gpu('gpu_temp', matcher)} + {num(t.gpu_temp_critical)}"
        add("gpu:temperature_warning_threshold:celsius", warn)
        add("gpu:temperature_critical_threshold:celsius", crit)
        limit = f"{n.gpu('enforced_power_limit', matcher)}\n  or\n  {n.gpu('power_limit', matcher)}"
        if fallbacks:
            limit += f"\n  or\n  0 * {n.gpu('power_usage', matcher)} + {num(t.power_limit_watts)}"
        add("gpu:power_limit:watts", limit)
    rules = [{"record": record, "expr": "\nor\n".join(f"(\n  {c}\n)" for c in exprs)}
             for record, exprs in clauses.items()]
    for level in ("warning", "critical"):
        rules.append({"record": f"gpu:temperature_margin_{level}_threshold:celsius",
                      "expr": _per_value(model, f"gpu_temp_margin_{level}", lambda m, v: (
                          f"0 * {n.gpu('gpu_temp_margin', m)} + {num(v)}"))})
    # Power thresholds scale the recorded limit; the ratio is per model.
    for level in ("warning", "critical"):
        rules.append({"record": f"gpu:power_{level}_threshold:watts",
                      "expr": _per_value(model, f"power_{level}_ratio", lambda m, v: (
                          f"{num(v)} * {sel('gpu:power_limit:watts', m)}"))})
    return rules


def gpu_rules(model: FleetModel) -> list[dict]:
    n = Names(model)
    flags = sel(n.clock_event_active, f"reason=~{quote('|'.join(HW_THROTTLE_REASONS))}")
    mask = n.gpu("clock_event_reasons")
    bits = " + ".join(f"(floor({mask} / {CLOCK_EVENT_BITS[r]}) % 2)" for r in HW_THROTTLE_REASONS)
    nvlink = "\nor\n".join(
        f'label_replace({n.gpu_increase(key)}, "kind", "{kind}", "", "")'
        for key, kind in (("nvlink_crc_flit_errors", "crc_flit"), ("nvlink_crc_data_errors", "crc_data"),
                          ("nvlink_replay_errors", "replay"), ("nvlink_recovery_errors", "recovery")))
    return [
        {"record": "gpu:temperature:celsius", "expr": n.gpu("gpu_temp")},
        {"record": "gpu:temperature_margin:celsius", "expr": n.gpu("gpu_temp_margin")},
        {"record": "gpu:power_usage:watts", "expr": n.gpu("power_usage")},
        {"record": "gpu:power_usage:ratio_of_limit",
         "expr": "gpu:power_usage:watts / gpu:power_limit:watts"},
        {"record": "gpu:utilization:ratio",
         "expr": f"{n.gpu_util} / 100\nor\n{n.gr_engine_active}"},
        {"record": "gpu:framebuffer_used:ratio",
         "expr": f"{n.fb_used} / ({n.fb_used} + {n.fb_free})"},
        {"record": "gpu:clock_event_hw_throttle:active",
         "expr": f"max without (reason, {n.mig_labels}) ({flags})\nor\n(({bits}) > bool 0)"},
        {"record": "gpu:nvlink_errors:increase5m", "expr": f"sum without (kind) (\n{nvlink}\n)"},
        # z-scores against the GPU's own last hour; the floor keeps a steady GPU from turning
        # sensor noise into huge scores.
        {"record": "gpu:temperature:zscore_1h",
         "expr": "(gpu:temperature:celsius - avg_over_time(gpu:temperature:celsius[1h]))\n"
                 "/ clamp_min(stddev_over_time(gpu:temperature:celsius[1h]), 1)"},
        {"record": "gpu:power_usage:zscore_1h",
         "expr": "(gpu:power_usage:watts - avg_over_time(gpu:power_usage:watts[1h]))\n"
                 "/ clamp_min(stddev_over_time(gpu:power_usage:watts[1h]), 5)"},
        {"record": "gpu:temperature:seconds_to_critical",
         "expr": "clamp_min(\n  (gpu:temperature_margin:celsius - gpu:temperature_margin_critical_threshold:celsius)\n"
                 "  / -(deriv(gpu:temperature_margin:celsius[10m]) < 0),\n  0\n)\nor\n"
                 "clamp_min(\n  (gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius)\n"
                 "  / (deriv(gpu:temperature:celsius[10m]) > 0),\n  0\n)"},
    ]


HEALTH_COMPONENTS = ("thermal", "power", "memory", "ecc", "throttle")


def health_rules(model: FleetModel) -> list[dict]:
    """The health score: five components in 0..1 (1 = healthy), averaged per GPU.

    A component whose inputs the exporter does not serve counts as healthy, so fleets on
    dcgm-exporter's default counters still get a score.
    """
    n = Names(model)
    healthy = "0 * gpu:temperature:celsius + 1"
    components = {
        "thermal": "clamp(gpu:temperature_margin:celsius / 15, 0, 1)\nor\n"
                   "clamp((gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius) / 15, 0, 1)",
        "power": "clamp(\n  (gpu:power_critical_threshold:watts - gpu:power_usage:watts)\n"
                 "  / (gpu:power_critical_threshold:watts - gpu:power_warning_threshold:watts),\n  0, 1\n)",
        # The fullest MIG instance speaks for its GPU.
        "memory": f"min without ({n.mig_labels}) (clamp((1 - gpu:framebuffer_used:ratio) / 0.1, 0, 1))",
        "ecc": f"0 * ({n.gpu_increase('ecc_dbe_volatile', '1h')} > 0)\n"
               f"or\n0 * ({n.gpu('row_remap_failure')} == 1)\n"
               f"or\nclamp(1 - {n.gpu_increase('ecc_sbe_volatile', '1h')} / 100, 0, 1)",
        "throttle": "1 - avg_over_time(gpu:clock_event_hw_throttle:active[10m])",
    }
    rules = [{"record": f"gpu:health_{name}:score", "expr": f"(\n{expr}\n)\nor\n{healthy}"}
             for name, expr in components.items()]
    rules.append({"record": "gpu:health:score",
                  "expr": "(\n" + "\n+ ".join(f"gpu:health_{c}:score" for c in HEALTH_COMPONENTS)
                          + f"\n) / {len(HEALTH_COMPONENTS)}"})
    return rules


def aggregate_rules(model: FleetModel) -> list[dict]:
    """Per host and per cluster: they need per-GPU data, so they run next to it. The cluster level
    is all the fleet rules and the fleet overview read, which is what lets a global tier federate
    only these series."""
    n = Names(model)
    h = n.host
    rules = []
    for level, by in (("host", f"cluster, {h}"), ("cluster", "cluster")):
        rules += [
            {"record": f"{level}:gpus:count", "expr": f"count by ({by}) (gpu:temperature:celsius)"},
            {"record": f"{level}:gpu_utilization:avg", "expr": f"avg by ({by}) (gpu:utilization:ratio)"},
            {"record": f"{level}:gpu_power_watts:sum", "expr": f"sum by ({by}) (gpu:power_usage:watts)"},
            {"record": f"{level}:gpu_temperature_celsius:max",
             "expr": f"max by ({by}) (gpu:temperature:celsius)"},
            {"record": f"{level}:gpu_framebuffer_used:ratio",
             "expr": f"sum by ({by}) ({n.fb_used}) / sum by ({by}) ({n.fb_used} + {n.fb_free})"},
            {"record": f"{level}:gpu_health_score:min", "expr": f"min by ({by}) (gpu:health:score)"},
        ]
    zero = "0 * count by (cluster) (gpu:temperature:celsius)"  # a cluster with none shows 0, not nothing
    firing = f"count by (cluster, {h}, gpu) ({FIRING_GPU_ALERTS})"
    rules += [
        {"record": "cluster:gpus_expected:count", "expr": f"sum by (cluster) ({n.inventory_expected_gpus})"},
        {"record": "cluster:gpus_alerting:count", "expr": f"count by (cluster) ({firing})\nor\n{zero}"},
        {"record": "cluster:gpus_healthy:count",
         "expr": f"count by (cluster) (gpu:temperature:celsius unless on (cluster, {h}, gpu) {FIRING_GPU_ALERTS})"
                 f"\nor\n{zero}"},
        # Sum and count, so the fleet's average is exact whatever the clusters' sizes.
        {"record": "cluster:gpu_utilization:sum", "expr": "sum by (cluster) (gpu:utilization:ratio)"},
        {"record": "cluster:gpu_utilization:count", "expr": "count by (cluster) (gpu:utilization:ratio)"},
        {"record": "cluster:alerts_firing:count",
         "expr": 'count by (cluster, severity) (ALERTS{alertstate="firing", family!=""})'},
    ]
    # The temperature distribution as cumulative buckets, like a Prometheus histogram.
    rules += [{"record": "cluster:gpu_temperature_celsius:bucket",
               "expr": f"count by (cluster) (gpu:temperature:celsius <= {le})\nor\n{zero}",
               "labels": {"le": str(le)}} for le in TEMPERATURE_BUCKETS]
    rules += [
        {"record": "cluster:gpu_temperature_celsius:bucket", "expr": "count by (cluster) (gpu:temperature:celsius)",
         "labels": {"le": "+Inf"}},
        # Each cluster's candidates for the fleet's top lists: bounded, whatever the cluster's size.
        {"record": f"cluster:gpu_temperature_celsius:top{TOP_GPUS}",
         "expr": f"topk by (cluster) ({TOP_GPUS}, gpu:temperature:celsius)"},
        {"record": f"cluster:gpu_health_score:bottom{TOP_GPUS}",
         "expr": f"bottomk by (cluster) ({TOP_GPUS}, gpu:health:score)"},
    ]
    return rules


def fleet_rules(model: FleetModel) -> list[dict]:
    """Fleet-wide figures, read only from cluster-level series: they run wherever every cluster's
    cluster-level series meet (the one Prometheus, a global tier, Thanos Ruler, a long-term store)."""
    return [
        {"record": "fleet:gpus:count", "expr": "sum(cluster:gpus:count) or vector(0)"},
        {"record": "fleet:gpus_expected:count", "expr": "sum(cluster:gpus_expected:count)"},
        {"record": "fleet:gpus_alerting:count", "expr": "sum(cluster:gpus_alerting:count) or vector(0)"},
        {"record": "fleet:gpus_healthy:count", "expr": "sum(cluster:gpus_healthy:count) or vector(0)"},
        {"record": "fleet:gpu_utilization:avg",
         "expr": "sum(cluster:gpu_utilization:sum) / sum(cluster:gpu_utilization:count)"},
        {"record": "fleet:gpu_power_watts:sum", "expr": "sum(cluster:gpu_power_watts:sum)"},
    ]


def expected_gpus(model: FleetModel) -> dict[str, int]:
    """GPUs the spec lists per cluster, for clusters with hosts."""
    expected: dict[str, int] = {}
    for host in model.hosts:
        expected[host.cluster] = expected.get(host.cluster, 0) + host.gpu_count
    return expected


def global_inventory_rules(model: FleetModel) -> list[dict]:
    """Each cluster's expected GPUs from the spec, for the global tier: a cluster whose Prometheus
    cannot be reached still counts as expected there, so its GPUs show as missing."""
    return [{"record": "cluster:gpus_expected:count", "expr": f"vector({count})", "labels": {"cluster": cluster}}
            for cluster, count in expected_gpus(model).items()]


def federated_names(model: FleetModel) -> list[str]:
    """The cluster-level series a global tier federates: every cluster-level recording rule, once,
    except those the global tier records from the spec itself."""
    own = {r["record"] for r in global_inventory_rules(model)}
    return list(dict.fromkeys(r["record"] for r in aggregate_rules(model)
                              if r["record"].startswith("cluster:") and r["record"] not in own))


def inventory_labels(model: FleetModel, host: Host) -> dict[str, str]:
    """The labels of a host's inventory series (and so of its host-level alerts)."""
    labels = {"cluster": host.cluster, model.prometheus.host_label: host.name}
    if host.team:
        labels["team"] = host.team
    labels["gpu_model"] = host.gpu.key
    return labels


def inventory_rules(model: FleetModel, cluster: str | None = None) -> list[dict]:
    """The spec's inventory as series, so GPU-missing and exporter-absent alerts can compare; with a
    Prometheus per cluster, each holds only its own cluster's (or it would miss every other host)."""
    metric = Names(model).inventory_expected_gpus
    return [{"record": metric, "expr": f"vector({host.gpu_count})", "labels": inventory_labels(model, host)}
            for host in model.hosts if cluster in (None, host.cluster)]


def _per_value(model: FleetModel, field: str, condition) -> str:
    """`condition(matcher, value)` for each distinct per-model value of one threshold field.

    When every model shares the value there is no model matcher at all, so GPUs of models the
    spec does not name are covered too.
    """
    n = Names(model)
    by_value: dict = {}
    for gpu, t in model.thresholds:
        by_value.setdefault(getattr(t, field), []).append(gpu.nvml_name)
    if len(by_value) == 1:
        return condition("", next(iter(by_value)))
    label = n.label("model_name")
    default = getattr(_catch_all(model), field)
    clauses = [condition(f"{label}=~{quote(regex_alternatives(names))}", value)
               for value, names in by_value.items()]
    others = regex_alternatives(gpu.nvml_name for gpu, _ in model.thresholds)
    clauses.append(condition(f"{label}!~{quote(others)}", default))
    return "\nor\n".join(f"({c})" for c in clauses)


def alert_expressions(model: FleetModel) -> dict[str, str]:
    n = Names(model)
    h = n.host
    up = sel("up", job=GPU_EXPORTER_JOB)
    temp, margin = "gpu:temperature:celsius", "gpu:temperature_margin:celsius"

    def thermal(threshold: str, op: str) -> str:
        """The T.Limit margin where the GPU reports one, else degrees against the threshold."""
        return (f"({temp} and ({margin} <= gpu:temperature_margin_{threshold}_threshold:celsius))\nor\n"
                f"({temp} {op} gpu:temperature_{threshold}_threshold:celsius unless {margin})")

    def xid(codes) -> str:
        pattern = quote("|".join(str(c) for c in codes))
        counter = sel(n.xid_errors, f"xid=~{pattern}")
        gauge_paths = "\nor\n".join(
            f'label_replace({n.gpu("xid_last")} == {c}, "xid", "{c}", "", "")' for c in codes)
        return (f"(increase({counter}[{XID_WINDOW}]) > 0)\nor\n"
                f"({counter} > 0 unless {counter} offset {XID_WINDOW})\nor\n"
                f"(\n{gauge_paths}\n) unless on (cluster, {h}, gpu) {n.xid_errors}")

    def horizon_prediction(matcher: str, horizon: str) -> str:
        """Only near the limit: a GPU warming up after a job starts rises steeply far below it."""
        series = sel(temp, matcher)
        critical = "gpu:temperature_critical_threshold:celsius"
        return (f"predict_linear({series}[10m], {int(seconds(horizon))}) >= {critical}\n"
                f"and {series} <= {critical}\n"
                f"and {series} >= {critical} - {PREDICTION_NEAR_CELSIUS}")

    reporting = (f"count by (cluster, {h}) (count by (cluster, {h}, gpu) ({n.gpu_temp}))\n"
                 f"    or on (cluster, {h})\n    0 * max by (cluster, {h}) ({up} == 1)")
    exprs = {
        "GPUThermalWarning": thermal("warning", ">="),
        "GPUThermalCritical": thermal("critical", ">"),
        "GPUThermalCriticalPredicted": _per_value(model, "thermal_prediction_horizon", horizon_prediction),
        "GPUPowerSpike": "gpu:power_usage:watts > gpu:power_warning_threshold:watts",
        "GPUPowerCritical": "gpu:power_usage:watts > gpu:power_critical_threshold:watts",
        "GPUEccCorrectableSpike": _per_value(model, "ecc_correctable_warning", lambda m, v: (
            f"{n.gpu_increase('ecc_sbe_volatile', matcher=m)} >= {num(v)}")),
        "GPUEccUncorrectable": f"{n.gpu_increase('ecc_dbe_volatile')} > 0",
        "GPUThrottling": "gpu:clock_event_hw_throttle:active == 1",
        "GPUMemoryPressure": _per_value(model, "memory_used_warning_ratio", lambda m, v: (
            f"100 * {sel('gpu:framebuffer_used:ratio', m)} >= {num(v * 100)}")),
        "GPURowRemapFailure": f"{n.gpu('row_remap_failure')} == 1",
        "GPURowRemapPending": f"{n.gpu('row_remap_pending')} == 1\nor\n{n.gpu('retired_pending')} > 0",
        "GPUNVLinkErrors": _per_value(model, "nvlink_errors_warning", lambda m, v: (
            f"{sel('gpu:nvlink_errors:increase5m', m)} > {num(v)}")),
        "GPUPCIeReplayErrors": _per_value(model, "pcie_replay_warning", lambda m, v: (
            f"{n.gpu_increase('pcie_replay', matcher=m)} > {num(v)}")),
        "GPUHealthLow": _per_value(model, "health_score_warning", lambda m, v: (
            f"{sel('gpu:health:score', m)} < {num(v)}")),
        # A GPU the exporter reports lost is named; otherwise only the shortfall of the host is known.
        "GPUMissing": (f"(1 - ({n.gpu_up} == 0))\n* on (cluster, {h}) group_left (gpu_model)\n"
                       f"({n.inventory_expected_gpus} > bool 0)\nor\n(\n"
                       f"  {n.inventory_expected_gpus}\n  - on (cluster, {h}) group_left ()\n"
                       f"  (\n    {reporting}\n  )\n"
                       f"  > 0\n  unless on (cluster, {h}) ({n.gpu_up} == 0)\n)"),
        "GPUExporterDown": (f"{up} == 0\nor on (cluster, {h})\n"
                            f"({n.inventory_expected_gpus} unless on (cluster, {h}) {up})"),
        "GPUExporterStale": f"time() - {n.exporter_last_success} > {model.prometheus.exporter_stale_seconds}",
    }
    for alert in model.alerts:
        if alert.definition.xid_codes:
            exprs[alert.name] = xid(alert.definition.xid_codes)
    return exprs


def alert_labels(model: FleetModel, alert: Alert) -> dict[str, str]:
    labels = {"severity": alert.severity, "action": alert.definition.action, "family": alert.definition.family}
    labels.update(alert.labels)
    return labels


def alert_annotations(model: FleetModel, alert: Alert) -> dict[str, str]:
    h = model.prometheus.host_label
    d = alert.definition

    def host_label(template: str) -> str:
        return template.replace("$labels.host }}", f"$labels.{h} }}}}")

    dashboard, panel = ALERT_PANELS[d.family]
    url = (f"{model.grafana_url}/d/{model.dashboard_uid(dashboard)}/?var-cluster={{{{ $labels.cluster }}}}"
           f"&var-host={{{{ $labels.{h} }}}}")
    if d.scope == "gpu":
        url += "&var-gpu={{ $labels.gpu }}"
    url += f"&viewPanel={panel}"
    return {
        "summary": d.summary,
        "description": host_label(d.description),
        "runbook_url": f"{model.runbook_url}#{d.name.lower()}",
        "dashboard_url": url,
    }


def expected_annotations(model: FleetModel, alert: Alert, labels: dict[str, str], value: float) -> dict:
    """The annotations Prometheus renders for an alert with these labels and value."""
    return {k: render_annotation(v, labels, value) for k, v in alert_annotations(model, alert).items()}


def generate(model: FleetModel) -> dict[str, dict]:
    """{relative path: document} for the rule files: one set for the fleet's one Prometheus, or
    shared cluster-tier files, each cluster's inventory and the fleet rules in a file of their own."""
    exprs = alert_expressions(model)
    alerts = {"groups": [{"name": "gpuobs.alerts", "rules": [{
        "alert": a.name,
        "expr": exprs[a.name],
        "for": a.for_,
        "labels": alert_labels(model, a),
        "annotations": alert_annotations(model, a),
    } for a in model.alerts]}]}
    recording = [
        {"name": "gpuobs.thresholds", "rules": threshold_rules(model)},
        {"name": "gpuobs.gpu", "rules": gpu_rules(model)},
        {"name": "gpuobs.health", "rules": health_rules(model)},
        {"name": "gpuobs.aggregates", "rules": aggregate_rules(model)},
    ]
    fleet = {"name": "gpuobs.fleet", "rules": fleet_rules(model)}
    if not model.per_cluster:
        return {
            INVENTORY_RULES: {"groups": [{"name": "gpuobs.inventory", "rules": inventory_rules(model)}]},
            RECORDING_RULES: {"groups": [*recording, fleet]},
            ALERT_RULES: alerts,
        }
    files = {RECORDING_RULES: {"groups": recording}, ALERT_RULES: alerts, FLEET_RULES: {"groups": [fleet]}}
    for server in model.servers:
        files[cluster_inventory(server.cluster)] = {
            "groups": [{"name": "gpuobs.inventory", "rules": inventory_rules(model, server.cluster)}]}
    if model.global_tier is not None:
        files[GLOBAL_INVENTORY] = {"groups": [{"name": "gpuobs.inventory", "rules": global_inventory_rules(model)}]}
    return files


INVENTORY_RULES = "prometheus/rules/inventory.yml"
RECORDING_RULES = "prometheus/rules/recording.yml"
ALERT_RULES = "prometheus/rules/alerts.yml"
FLEET_RULES = "prometheus/rules/fleet.yml"
GLOBAL_FOLDER = "prometheus/global"
GLOBAL_INVENTORY = f"{GLOBAL_FOLDER}/rules/inventory.yml"
RULE_FILES = (INVENTORY_RULES, RECORDING_RULES, ALERT_RULES)  # the fleet's one Prometheus loads these


def cluster_folder(cluster: str) -> str:
    """Where a cluster's own Prometheus configuration goes, when each cluster has one."""
    return f"prometheus/clusters/{cluster}"


def cluster_inventory(cluster: str) -> str:
    return f"{cluster_folder(cluster)}/rules/inventory.yml"


def cluster_rule_files(cluster: str) -> list[str]:
    """The rule files a cluster's own Prometheus loads."""
    return [cluster_inventory(cluster), RECORDING_RULES, ALERT_RULES]


def rule_files(model: FleetModel) -> list[str]:
    """Every rule file the model generates."""
    if not model.per_cluster:
        return list(RULE_FILES)
    files = [RECORDING_RULES, ALERT_RULES, FLEET_RULES] + [cluster_inventory(s.cluster) for s in model.servers]
    return files + ([GLOBAL_INVENTORY] if model.global_tier is not None else [])


def global_rule_files(model: FleetModel) -> list[str]:
    """The rule files the global Prometheus loads."""
    return [GLOBAL_INVENTORY, FLEET_RULES] if model.global_tier is not None else []
