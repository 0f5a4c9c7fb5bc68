"""Prometheus recording and alerting rules, built from the model and the metric catalog.

Rules are written per exporter setup: each reads exactly the series its exporter serves as
configured (never a run-time fallback between names that may not exist), and what it cannot
see is named by GPUAlertBlind. Thresholds are recorded as per-GPU series (gpu:*_threshold:*) so
alerts and dashboards share them: a GPU's own reported limit (max operating temperature,
enforced power limit) wins where served, and the figure for the model the spec's inventory puts
on the host (its `gpu_model` target label) is the fallback. Where a setup serves no such limit the
fast rules compare with the figures themselves (series.fixed_threshold). Each alert's expression
comes from its entry in the alert catalog (gpuobs/alerts/).
"""

from __future__ import annotations

from gpuobs.alerts import render_annotation, xid
from gpuobs.alerts.coverage import coverage_rules
from gpuobs.catalog import DCGM_LABELS, MIG_IDENTITY, WORKLOAD_LABELS
from gpuobs.generators import efficiency, own_rules
from gpuobs.gpus import slices_of
from gpuobs.health import COMPONENTS as HEALTH_COMPONENTS
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num, quote, regex_alternatives, seconds, sel
from gpuobs.series import (
    HOST_GPUS,
    HW_THROTTLE,
    NVLINK_ERROR_KINDS,
    NVLINK_ERRORS,
    PAST_WARNING,
    POWER_LIMIT_SOURCES,
    PRESENT,
    Names,
    applicable,
    by_model,
    hw_throttle,
    names_of,
    past,
    threshold_of,
    union,
)
from gpuobs.tiers import CONFIGURATION, SLOW, SLOW_ALERT_INTERVALS, STATIC, tier_seconds

TEMPERATURE_STEP = 5
TEMPERATURE_BUCKETS = tuple(range(30, 101, TEMPERATURE_STEP))  # °C: upper bounds of the distribution, then +Inf
# GPUs per cluster in each bucket alone (its upper bound as `le`; above the last, the next step).
TEMPERATURE_BUCKET_COUNT = "cluster:gpu_temperature_celsius:bucket_gpus"
TOP_GPUS = 10  # rows of the fleet overview's hottest and least healthy tables
CLUSTER_ZERO = "0 * cluster:gpus:count"  # a cluster with no GPU counted shows 0, not nothing
MIG_FRACTION = "gpu_model:mig_compute_fraction:ratio"


def _temperature_threshold(n: Names, model: FleetModel, level: str) -> str:
    """In degrees, per GPU: where the GPU reports its margin to T.Limit, T.Limit (temperature +
    margin, a constant of the GPU) less the margin threshold; else its own max operating
    temperature; else the model's figure. One threshold in degrees lets the thermal alerts read
    two series instead of five."""
    figure = threshold_of(model, f"gpu_temp_{level}")
    offset = threshold_of(model, "gpu_temp_max_op_offset_warning")
    margin = threshold_of(model, f"gpu_temp_margin_{level}")

    def condition(m, values):
        value, off, margin_value = values
        clauses = []
        if n.serves("gpu_temp_margin"):
            clauses.append(f"{n.gpu('gpu_temp', m)} + {n.gpu('gpu_temp_margin', m)} - {num(margin_value)}")
        if n.serves("gpu_max_op_temp"):
            clauses.append(n.gpu("gpu_max_op_temp", m) + (f" - {num(off)}" if level == "warning" else ""))
        clauses.append(f"0 * {n.gpu('gpu_temp', m)} + {num(value)}")
        return "\n  or\n  ".join(clauses)

    return by_model(model.models_of(n.exporter),
                    lambda g: (figure(g), offset(g) if level == "warning" else 0, margin(g)), condition)


def threshold_rules(model: FleetModel) -> list[dict]:
    """Per-GPU thresholds, so alerts and dashboards share them. They follow configuration and the
    GPU's own limits, not the last scrape, so they run in the configuration tier: a new GPU's
    thermal and power alerts wait for its first thresholds, at most one such interval."""
    ns = [n for n in names_of(model) if n.serves("gpu_temp")]
    rules = []
    if ns:
        for level in ("warning", "critical"):
            rules.append({"record": f"gpu:temperature_{level}_threshold:celsius",
                          "expr": union([_temperature_threshold(n, model, level) for n in ns])})
    power = [n for n in names_of(model) if n.serves("power_usage")]
    if power:
        rules.append({"record": "gpu:power_limit:watts", "expr": union([_power_limit(n, model) for n in power])})
        for level in ("warning", "critical"):
            rules.append({"record": f"gpu:power_{level}_threshold:watts",
                          "expr": by_model(model.gpu_models, threshold_of(model, f"power_{level}_ratio"),
                                           lambda m, v: f"{num(v)} * {sel('gpu:power_limit:watts', m)}")})
    return rules


def _power_limit(n: Names, model: FleetModel) -> str:
    """The limit the driver enforces where served, else the model's figure."""
    figure = threshold_of(model, "power_limit_watts")

    def condition(m, value):
        own = [n.gpu(key, m) for key in POWER_LIMIT_SOURCES if n.serves(key)]
        return "\n  or\n  ".join(own[:1] + [f"0 * {n.gpu('power_usage', m)} + {num(value)}"])

    return by_model(model.models_of(n.exporter), figure, condition)


def _presence(n: Names) -> str:
    """The series every GPU of this setup has, whatever else it lacks (a vGPU guest serves no
    temperature or power, a MIG GPU no GPU-level utilization)."""
    key = n.presence_key
    if key == "gpu_up":
        return n.gpu("gpu_up") + " == 1"
    if not n.profile.has_label("gpu"):
        return f"group without () ({n.gpu(key)})"
    return f"group without ({n.dropped}) ({n.raw(key)})"


def _gpus_of_host(n: Names) -> str:
    """One series per GPU reporting, labelled by host and GPU only: grouping by three labels costs
    less than shedding the MIG and workload labels of each series (15 % of the rule at 10,000
    GPUs), and a GPU whose other labels split its series still counts once."""
    if not n.profile.has_label("gpu"):
        return _presence(n)
    where = " == 1" if n.presence_key == "gpu_up" else ""
    return f"group by (cluster, {n.host}, gpu) ({n.raw(n.presence_key)}{where})"


def _utilization(n: Names, model: FleetModel) -> str | None:
    """Busy fraction per physical GPU; a MIG GPU's instances count by their share of its compute
    slices, so a fully busy 1g instance is 1/7 of a busy GPU, not a whole one."""
    clauses = []
    if n.serves("gpu_util"):
        clauses.append(f"{n.gpu('gpu_util')} / 100")
    if n.serves("gr_engine_active") and n.mig:
        profile_label = n.label("mig_profile")
        active = sel(n.gr_engine_active, n.job, f'{profile_label}!=""')
        clauses.append(
            f"sum without ({n.dropped}, mig_slices) (\n"
            f'    label_replace({active}, "mig_slices", "$1", {quote(profile_label)}, "([0-9]+)g.*")\n'
            f"    * on (gpu_model, mig_slices) group_left () {MIG_FRACTION}\n  )")
        if not n.serves("gpu_util"):
            clauses.append(n.gpu("gr_engine_active", f'{profile_label}=""'))
    return "\nor\n".join(clauses) if clauses else None


def mig_fraction_rules(model: FleetModel) -> list[dict]:
    """Each MIG-capable model's compute share per instance size, for the utilization weighting."""
    rules = []
    for gpu in model.gpu_models:
        for slices in sorted({slices_of(p.name) for p in gpu.mig_profiles}):
            rules.append({"record": MIG_FRACTION, "expr": f"vector({num(slices / gpu.compute_slices)})",
                          "labels": {"gpu_model": gpu.key, "mig_slices": str(slices)}})
    return rules


def recorder(model: FleetModel):
    """record(name, build): one rule over every setup `build(names)` gives a clause for, or none."""
    ns = names_of(model)

    def record(name: str, build) -> list[dict]:
        clauses = [c for c in (build(n) for n in ns) if c]
        return [{"record": name, "expr": union(clauses)}] if clauses else []

    return record


def _served(key, build):
    return lambda n: build(n) if n.serves(key) else None


def _used_share(used: str, free: str) -> str:
    """used / (used + free), reading each series once: 0 when nothing is used, NaN when both are 0."""
    return f"1 / (1 + {free} / {used})"


def _framebuffer_share(model: FleetModel) -> list[dict]:
    """Per MIG instance: each has its own framebuffer share; workload labels are shed."""
    return recorder(model)("gpu:framebuffer_used:ratio", lambda n: (
        n.per_instance(_used_share(sel(n.fb_used, n.job), sel(n.fb_free, n.job)))
        if n.serves("fb_used") and n.serves("fb_free") else None))


def _alert_group(model: FleetModel, alert: str) -> str | None:
    """The group `alert` runs in, gpuobs.alerts or gpuobs.alerts.slow; None where it is off. What
    only it reads is recorded in that group, just before it."""
    found = next((a for a in model.alerts if a.name == alert), None)
    if found is None:
        return None
    return "gpuobs.alerts.slow" if is_slow(model, found) else "gpuobs.alerts"


def _read_fast(model: FleetModel, alert: str) -> bool:
    return _alert_group(model, alert) == "gpuobs.alerts"


def signal_rules(model: FleetModel) -> list[dict]:
    """The per-GPU series the fast alerts read that no raw series gives: the GPUs reporting per
    host, those past their warning temperature or power, the XIDs seen lately (per code, for every
    XID tier) and (for a fast GPUMemoryPressure) each GPU's framebuffer share. Rules of a group
    run in order, so the alerts after them in the same group see this evaluation's values, not the
    last one's. Everything else the alerts read is raw (filtered, then reduced per GPU) or
    configuration."""
    record = recorder(model)
    rules = _framebuffer_share(model) if _read_fast(model, "GPUMemoryPressure") else []
    # GPUs reporting per host, for GPUMissing: a GPU gone from the scrape counts at once.
    h = model.prometheus.host_label
    rules += record(HOST_GPUS, lambda n: f"count by (cluster, {h}) ({_gpus_of_host(n)})")
    for key, (name, _, _) in PAST_WARNING.items():
        rules += record(name, _served(key, lambda n, key=key: _past_warning(n, key)))
    # A setup serving no XID series gives no clause, so an enabled tier that cannot fire adds nothing.
    if any(a.definition.family == "xid" for a in model.alerts):
        rules += record(xid.RECENT, xid.recent)
    return rules + _throttle_flags(model, "gpuobs.alerts")


def _throttle_flags(model: FleetModel, group: str) -> list[dict]:
    """The hardware-slowdown flags, if `group` records them: GPUThrottling's group, so it reads
    this evaluation's flags (one series per GPU, not the three raw flags); without the alert, the
    per-GPU group. The throttle health component and the GPU dashboard read them wherever they are."""
    home = _alert_group(model, "GPUThrottling") or "gpuobs.gpu"
    return recorder(model)(HW_THROTTLE, hw_throttle) if group == home else []


def _past_warning(n: Names, key: str) -> str:
    """A setup's raw `key` past its per-GPU warning threshold, filtered before the per-GPU
    reduction: the comparison passes few series, and it reads this scrape's value."""
    threshold = f"on (cluster, {n.host}, gpu) group_left () {sel(PAST_WARNING[key][2].format('warning'), n.job)}"
    if n.profile.has_label("gpu"):
        return n.per_gpu(past(n, key, "warning", lambda m: n.raw(key, m), threshold))
    return past(n, key, "warning", lambda m: n.gpu(key, m), threshold)


def gpu_rules(model: FleetModel) -> list[dict]:
    """Per-GPU series for dashboards, trends, health, aggregates and the slow alerts. The fast
    alerts read temperature and power raw, so recording them every evaluation would only buy
    finer history; the GPU dashboard draws that from the raw series."""
    record = recorder(model)
    rules = record("gpu:temperature:celsius", _served("gpu_temp", lambda n: n.gpu("gpu_temp")))
    rules += record("gpu:power_usage:watts", _served("power_usage", lambda n: n.gpu("power_usage")))
    rules += [] if _read_fast(model, "GPUMemoryPressure") else _framebuffer_share(model)
    rules += record(PRESENT, _presence)
    rules += record("gpu:utilization:ratio", lambda n: _utilization(n, model))
    return rules + _throttle_flags(model, "gpuobs.gpu")


def trend_rules(model: FleetModel) -> list[dict]:
    """NVLink errors over 5 minutes, for their alert: an evaluation every few minutes draws the
    same trend at a fraction of the cost. The GPU's anomaly scores and time to its critical
    temperature are no rule's input: the health dashboard computes them for the GPUs it shows."""
    return recorder(model)(NVLINK_ERRORS, _nvlink_errors)


def _nvlink_errors(n: Names) -> str | None:
    served = [(key, kind) for key, kind in NVLINK_ERROR_KINDS if n.serves(key)]
    if not served or not any(g.nvlink_links for g in n.model.models_of(n.exporter)):
        return None
    # Each counter's increase filtered before the union: joining every GPU's four series cost
    # three times as much as reading them. So the series holds only GPUs with errors.
    parts = "\nor\n".join(f'label_replace(increase({sel(getattr(n, key), n.job)}[5m]) > 0, "kind", "{kind}", "", "")'
                          for key, kind in served)
    return n.per_gpu(f"sum without (kind) (\n{parts}\n)")


def health_rules(model: FleetModel) -> list[dict]:
    """The health score: five components in 0..1 (1 = healthy), averaged per GPU.

    A component whose inputs the exporter does not serve counts as healthy, so every GPU the
    exporter reports gets a score.
    """
    ns = names_of(model)
    healthy = PRESENT  # 1 for every GPU the exporter reports
    ecc = []
    for n in ns:
        parts = []
        if n.serves("ecc_dbe_volatile"):
            # Zero while any uncorrectable error is counted since the GPU's last reset, as
            # GPUEccUncorrectable fires: not for an hour after it, and from the first scrape on.
            parts.append(f"0 * {n.gpu('ecc_dbe_volatile', where='> 0')}")
        if n.serves("row_remap_failure"):
            parts.append(f"0 * {n.gpu('row_remap_failure', where='== 1')}")
        if n.serves("ecc_sbe_volatile"):
            parts.append(f"clamp(1 - {n.gpu_increase('ecc_sbe_volatile', '1h', where='> 0')} / 100, 0, 1)")
        if parts:
            ecc.append("\nor\n".join(parts))
    critical, warning = threshold_of(model, "power_critical_ratio"), threshold_of(model, "power_warning_ratio")
    # Each component keeps only the GPUs below 1 before its arithmetic, and the rest get their 1
    # from their presence: arithmetic over every GPU's series costs as much as reading them.
    components = {
        # Degrees to the critical threshold: for a GPU reporting its margin, the margin itself.
        "thermal": "clamp_min((gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius < 15) / 15, 0)",
        # From warning (1) to critical (0); both thresholds are fractions of the limit, so one
        # recorded ratio gives it: (c·L - P) / (c·L - w·L) = (c - P/L) / (c - w).
        "power": by_model(model.gpu_models, lambda g: (critical(g), warning(g)), lambda m, v: (
            f"clamp_min(({num(v[0])} - ({sel('gpu:power_usage:ratio_of_limit', m)} > {num(v[1])})) "
            f"/ ({num(v[0])} - {num(v[1])}), 0)")),
        # The fullest MIG instance speaks for its GPU.
        "memory": f"min without ({', '.join(_all_mig_labels(model))}) "
                  "(clamp_min((1 - (gpu:framebuffer_used:ratio > 0.9)) / 0.1, 0))",
        "ecc": "\nor\n".join(ecc),
        "throttle": f"1 - (avg_over_time({HW_THROTTLE}[10m]) > 0)",
    }
    # Only the power component reads it: recorded here, not every slow evaluation with the rest.
    rules = [{"record": "gpu:power_usage:ratio_of_limit", "expr": "gpu:power_usage:watts / gpu:power_limit:watts"}
             ] if any(n.serves("power_usage") for n in ns) else []
    rules += [{"record": f"gpu:health_{name}:score", "expr": f"(\n{expr}\n)\nor\n{healthy}" if expr else healthy}
              for name, expr in components.items()]
    # Every component has a series per GPU (`or` the GPU's presence), all with the same labels, so
    # one aggregation takes them: four vector matches of every GPU cost three times as much. An
    # average, not a sum over five: the presence comes from another group, so a GPU it has not yet
    # recorded has only the components read from other inputs, and a sum would count the rest as 0.
    parts = regex_alternatives(HEALTH_COMPONENTS)
    rules.append({"record": "gpu:health:score",
                  "expr": f'avg without () ({{__name__=~"gpu:health_({parts}):score"}})'})
    return rules


def _all_mig_labels(model: FleetModel) -> list[str]:
    labels = list(dict.fromkeys(label for n in names_of(model) for label in n.mig))
    return labels or [DCGM_LABELS[k] for k in MIG_IDENTITY]


def aggregate_rules(model: FleetModel) -> list[dict]:
    """Per host and per cluster: they need per-GPU data, so they run next to it. A cluster's
    counts, sums and extremes come from its hosts' where the host series allow it (a few series per
    host, not one per GPU). The cluster level is all the fleet rules and the fleet overview read,
    which is what lets a global tier federate only these series."""
    ns = names_of(model)
    h = ns[0].host
    fb = [n for n in ns if n.serves("fb_used") and n.serves("fb_free")]

    def framebuffer() -> list[dict]:
        """Used and free summed per host, the shares per host and per cluster from those sums: the
        framebuffer series of every GPU are read once, not once per level."""
        if not fb:
            return []

        # Workload labels split one instance's series by pod: shed them before summing.
        def total(key: str) -> str:
            return union([f"max without ({', '.join(WORKLOAD_LABELS)}) ({n.raw(key)})" for n in fb])

        return [
            {"record": f"host:gpu_framebuffer_{kind}_mib:sum", "expr": f"sum by ({per_host}) ({total(key)})"}
            for kind, key in (("used", "fb_used"), ("free", "fb_free"))] + [
            {"record": "host:gpu_framebuffer_used:ratio",
             "expr": _used_share("host:gpu_framebuffer_used_mib:sum", "host:gpu_framebuffer_free_mib:sum")},
            {"record": "cluster:gpu_framebuffer_used:ratio",
             "expr": _used_share("sum by (cluster) (host:gpu_framebuffer_used_mib:sum)",
                                 "sum by (cluster) (host:gpu_framebuffer_free_mib:sum)")},
        ]

    per_host = f"cluster, {h}"
    # Utilization is summed and counted per host, once; every average above it divides those, so
    # the fleet's average is exact whatever the hosts' and clusters' sizes.
    rules = [
        {"record": "host:gpu_utilization:sum", "expr": f"sum by ({per_host}) (gpu:utilization:ratio)"},
        {"record": "host:gpu_utilization:count", "expr": f"count by ({per_host}) (gpu:utilization:ratio)"},
        {"record": "host:gpu_utilization:avg", "expr": "host:gpu_utilization:sum / host:gpu_utilization:count"},
        {"record": "host:gpu_power_watts:sum", "expr": f"sum by ({per_host}) (gpu:power_usage:watts)"},
        {"record": "host:gpu_temperature_celsius:max", "expr": f"max by ({per_host}) (gpu:temperature:celsius)"},
        *framebuffer(),
        {"record": "host:gpu_health_score:min", "expr": f"min by ({per_host}) (gpu:health:score)"},
        {"record": "cluster:gpus:count", "expr": f"sum by (cluster) ({HOST_GPUS})"},
        {"record": "cluster:gpu_utilization:sum", "expr": "sum by (cluster) (host:gpu_utilization:sum)"},
        {"record": "cluster:gpu_utilization:count", "expr": "sum by (cluster) (host:gpu_utilization:count)"},
        {"record": "cluster:gpu_utilization:avg",
         "expr": "cluster:gpu_utilization:sum / cluster:gpu_utilization:count"},
        {"record": "cluster:gpu_power_watts:sum", "expr": "sum by (cluster) (host:gpu_power_watts:sum)"},
        {"record": "cluster:gpu_temperature_celsius:max",
         "expr": "max by (cluster) (host:gpu_temperature_celsius:max)"},
        {"record": "cluster:gpu_health_score:min", "expr": "min by (cluster) (host:gpu_health_score:min)"},
    ]
    alerting = firing_gpu_alerts(model)
    firing = f"count by (cluster, {h}, gpu) ({alerting})"
    rules += [
        {"record": "cluster:gpus_expected:count",
         "expr": f"sum by (cluster) ({ns[0].inventory_expected_gpus})"},
        {"record": "cluster:gpus_alerting:count", "expr": f"count by (cluster) ({firing})\nor\n{CLUSTER_ZERO}"},
        {"record": "cluster:gpus_healthy:count",
         "expr": f"count by (cluster) ({PRESENT} unless on (cluster, {h}, gpu) {alerting})"
                 f"\nor\n{CLUSTER_ZERO}"},
        {"record": "cluster:alerts_firing:count",
         "expr": 'count by (cluster, severity) (ALERTS{alertstate="firing", family!=""})'},
    ]
    rules += [
        # Each cluster's candidates for the fleet's top lists: bounded, whatever the cluster's size.
        {"record": f"cluster:gpu_temperature_celsius:top{TOP_GPUS}",
         "expr": f"topk by (cluster) ({TOP_GPUS}, gpu:temperature:celsius)"},
        {"record": f"cluster:gpu_health_score:bottom{TOP_GPUS}",
         "expr": f"bottomk by (cluster) ({TOP_GPUS}, gpu:health:score)"},
    ]
    return rules


def distribution_rules(model: FleetModel) -> list[dict]:
    """Each cluster's temperature distribution as cumulative buckets, like a Prometheus histogram,
    for a heatmap that shows minutes, not seconds. Every GPU is read once, into its bucket's count
    (count_values on the bucket's upper bound); each cumulative bucket then adds up those few
    series, where a comparison per bucket read every GPU once per bucket."""
    step, lowest, top = TEMPERATURE_STEP, TEMPERATURE_BUCKETS[0], TEMPERATURE_BUCKETS[-1]
    rules = [{"record": TEMPERATURE_BUCKET_COUNT,
              "expr": f'count_values by (cluster) ("le", clamp(ceil(gpu:temperature:celsius / {step}) * {step}, '
                      f'{lowest}, {top + step}))'}]
    rules += [{"record": "cluster:gpu_temperature_celsius:bucket",
               "expr": f"sum by (cluster) ({TEMPERATURE_BUCKET_COUNT}{{le=~{quote(_up_to(le))}}})\nor\n{CLUSTER_ZERO}",
               "labels": {"le": str(le)}} for le in TEMPERATURE_BUCKETS]
    return rules + [{"record": "cluster:gpu_temperature_celsius:bucket",
                     "expr": f"sum by (cluster) ({TEMPERATURE_BUCKET_COUNT})", "labels": {"le": "+Inf"}}]


def _up_to(le: int) -> str:
    return regex_alternatives(str(b) for b in TEMPERATURE_BUCKETS if b <= le)


def recorded(model: FleetModel) -> set[str]:
    """Every series name the fleet's recording rules produce: dashboards read only these."""
    rules = threshold_rules(model) + signal_rules(model) + gpu_rules(model) + trend_rules(model) + health_rules(model)
    rules += _throttle_flags(model, "gpuobs.alerts.slow")
    rules += aggregate_rules(model) + distribution_rules(model) + fleet_rules(model)
    rules += efficiency.efficiency_rules(model)
    return {r["record"] for r in rules}


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


def firing_gpu_alerts(model: FleetModel) -> str:
    """The firing alerts that say a GPU is unwell: neither a blind spot (family coverage) nor an idle
    allocation (family efficiency, where the fleet has it) says anything of the GPU's own health."""
    families = ["coverage"] + (["efficiency"] if any(a.definition.family == "efficiency" for a in model.alerts) else [])
    family = f"family!={quote(families[0])}" if len(families) == 1 else f"family!~{quote('|'.join(families))}"
    return f'ALERTS{{alertstate="firing", severity=~"critical|warning", {family}}}'


def global_inventory_rules(model: FleetModel) -> list[dict]:
    """Each cluster's expected GPUs from the spec, for the global tier: a cluster whose Prometheus
    cannot be reached still counts as expected there, so its GPUs show as missing."""
    return [{"record": "cluster:gpus_expected:count", "expr": f"vector({count})", "labels": {"cluster": cluster}}
            for cluster, count in expected_gpus(model).items()]


def federated_names(model: FleetModel) -> list[str]:
    """The cluster-level series a global tier federates: every cluster-level recording rule, once,
    except those the global tier records from the spec itself and the distribution's per-bucket
    counts (each cluster adds its own up into the cumulative buckets)."""
    own = {r["record"] for r in global_inventory_rules(model)} | {TEMPERATURE_BUCKET_COUNT}
    return list(dict.fromkeys(r["record"] for r in aggregate_rules(model) + distribution_rules(model)
                              if r["record"].startswith("cluster:") and r["record"] not in own))


def inventory_labels(model: FleetModel, host: Host) -> dict[str, str]:
    """The labels of a host's inventory series (and so of its host-level alerts)."""
    labels = {"cluster": host.cluster, model.prometheus.host_label: host.name}
    if host.team:
        labels["team"] = host.team
    labels["gpu_model"] = host.gpu.key
    return labels


def inventory_rules(model: FleetModel, cluster: str | None = None) -> list[dict]:
    """The spec's inventory as series, so GPU-missing and exporter-absent alerts can compare, and
    its prices for the efficiency rules; with a Prometheus per cluster, each holds only its own
    cluster's (or it would miss every other host)."""
    metric = names_of(model)[0].inventory_expected_gpus
    return [{"record": metric, "expr": f"vector({host.gpu_count})", "labels": inventory_labels(model, host)}
            for host in model.hosts if cluster in (None, host.cluster)] + efficiency.price_rules(model, cluster)


def alert_labels(model: FleetModel, alert: Alert) -> dict[str, str]:
    labels = {"severity": alert.severity, "action": alert.definition.action, "family": alert.definition.family}
    labels.update(alert.labels)
    return labels


def can_fire(model: FleetModel, alert: Alert) -> bool:
    """Whether some exporter setup of the fleet serves every signal the alert reads."""
    return any(all(any(n.serves(k) for k in signal) for signal in alert.definition.needs)
               and applicable(n, alert.definition) for n in names_of(model))


def active_alerts(model: FleetModel) -> list[Alert]:
    """The enabled alerts that can fire somewhere; the others would be rules over nothing (what
    they miss is named by GPUAlertBlind and by `gpuobs validate`)."""
    return [a for a in model.alerts if can_fire(model, a)
            and (a.definition.variants is None or a.definition.rules(model, names_of(model)))]


def alert_annotations(model: FleetModel, alert: Alert, fill: dict[str, str] | None = None) -> dict[str, str]:
    h = model.prometheus.host_label
    d = alert.definition

    def host_label(template: str) -> str:
        return template.replace("$labels.host }}", f"$labels.{h} }}}}")

    dashboard, panel = d.panel
    url = (f"{model.grafana_url}/d/{model.dashboard_uid(dashboard)}/?var-cluster={{{{ $labels.cluster }}}}"
           f"&var-host={{{{ $labels.{h} }}}}")
    if d.scope == "gpu":
        url += "&var-gpu={{ $labels.gpu }}"
    url += f"&viewPanel={panel}"
    return {
        "summary": d.summary,
        "description": host_label(_filled(d.description, fill or {})),
        "runbook_url": f"{model.runbook_url}#{d.runbook_anchor}",
        "dashboard_url": url,
    }


def _filled(template: str, fill: dict) -> str:
    for key, value in fill.items():
        template = template.replace("{" + key + "}", value)
    return template


def expected_annotations(model: FleetModel, alert: Alert, labels: dict[str, str], value: float,
                         fill: dict | None = None) -> dict:
    """The annotations Prometheus renders for an alert with these labels and value."""
    return {k: render_annotation(v, labels, value) for k, v in alert_annotations(model, alert, fill).items()}


def tier_interval(model: FleetModel, tier: tuple[int, int]) -> str:
    return f"{tier_seconds(model.prometheus.evaluation_interval, tier)}s"


def is_slow(model: FleetModel, alert: Alert) -> bool:
    slow = seconds(tier_interval(model, SLOW))
    return alert.severity != "critical" and (seconds(alert.for_) >= SLOW_ALERT_INTERVALS * slow
                                             or alert.definition.waits_for_operator)


def alert_rules(model: FleetModel) -> list[dict]:
    """Each active alert's rules, as its catalog entry builds them."""
    ns = names_of(model)
    return [{"alert": a.name, "expr": rule.expr, "for": a.for_, "labels": {**alert_labels(model, a), **rule.labels},
             "annotations": alert_annotations(model, a, rule.fill)}
            for a in active_alerts(model) for rule in a.definition.rules(model, ns)]


def _group(name: str, rules: list[dict], interval: str | None = None) -> list[dict]:
    if not rules:
        return []
    return [{"name": name, **({"interval": interval} if interval else {}), "rules": rules}]


def rule_groups(model: FleetModel) -> tuple[list[dict], list[dict]]:
    """(alerting groups, recording groups). The fast group holds the per-GPU signals and then the
    alerts that read them, so those alerts see the scrape they are evaluated after."""
    slow, static, configuration = (tier_interval(model, tier) for tier in (SLOW, STATIC, CONFIGURATION))
    by_name = {a.name: a for a in model.alerts}
    now, later, blind = [], [], []
    for rule in alert_rules(model):
        alert = by_name[rule["alert"]]
        # Blind spots follow configuration: they run with the coverage recordings they read.
        (blind if alert.definition.family == "coverage" else later if is_slow(model, alert) else now).append(rule)
    alerting = [*_group("gpuobs.alerts", signal_rules(model) + now),
                *_group("gpuobs.alerts.slow", _throttle_flags(model, "gpuobs.alerts.slow") + later, slow),
                *_group("gpuobs.coverage", coverage_rules(model) + blind, configuration)]
    recording = [*_group("gpuobs.thresholds", threshold_rules(model) + mig_fraction_rules(model), configuration),
                 *_group("gpuobs.gpu", gpu_rules(model), slow),
                 *_group("gpuobs.trends", trend_rules(model), static),
                 *_group("gpuobs.health", health_rules(model), static),
                 *_group("gpuobs.aggregates", aggregate_rules(model), slow),
                 *_group("gpuobs.distribution", distribution_rules(model), static),
                 *_group("gpuobs.efficiency", efficiency.efficiency_rules(model), static)]
    return alerting, recording


# Groups whose series follow configuration, not scrapes: a fault never waits for them, so an alert
# reading them is not late however seldom they run.
CONFIGURATION_GROUPS = ("gpuobs.thresholds", "gpuobs.inventory")
# Group names in the order their series feed each other: inventory and thresholds, the fast group
# (signals, then the alerts reading them), the series derived from it, the slow alerts, blind spots.
EVALUATION_ORDER = ("gpuobs.inventory", "gpuobs.thresholds", "gpuobs.alerts", "gpuobs.gpu", "gpuobs.trends",
                    "gpuobs.health", "gpuobs.aggregates", "gpuobs.distribution", "gpuobs.efficiency", "gpuobs.fleet",
                    "gpuobs.alerts.slow", "gpuobs.coverage", own_rules.GROUP)


def _inventory(rules: list[dict], interval: str) -> dict:
    return {"name": "gpuobs.inventory", "interval": interval, "rules": rules}


def generate(model: FleetModel) -> dict[str, dict]:
    """{relative path: document} for the rule files: one set for the fleet's one Prometheus, or
    shared cluster-tier files, each cluster's inventory and the fleet rules in a file of their own."""
    alerting, recording = rule_groups(model)
    alerts = {"groups": alerting}
    fleet = {"name": "gpuobs.fleet", "rules": fleet_rules(model)}
    static = tier_interval(model, STATIC)
    if not model.per_cluster:
        return {
            INVENTORY_RULES: {"groups": [_inventory(inventory_rules(model), static)]},
            RECORDING_RULES: {"groups": [*recording, fleet]},
            ALERT_RULES: alerts,
            **own_rules.documents(model),
        }
    files = {RECORDING_RULES: {"groups": recording}, ALERT_RULES: alerts, FLEET_RULES: {"groups": [fleet]},
             **own_rules.documents(model)}
    for server in model.servers:
        files[cluster_inventory(server.cluster)] = {
            "groups": [_inventory(inventory_rules(model, server.cluster), static)]}
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


def served_rule_files(model: FleetModel, cluster: str | None = None) -> list[str]:
    """The rule files a Prometheus scraping hosts loads: the fleet's one (no cluster) or a cluster's own."""
    return (list(RULE_FILES) if cluster is None else cluster_rule_files(cluster)) + own_rules.rule_files(model)


def rule_files(model: FleetModel) -> list[str]:
    """Every rule file the model generates."""
    if not model.per_cluster:
        return served_rule_files(model)
    files = [RECORDING_RULES, ALERT_RULES, FLEET_RULES] + [cluster_inventory(s.cluster) for s in model.servers]
    return files + ([GLOBAL_INVENTORY] if model.global_tier is not None else []) + own_rules.rule_files(model)


def global_rule_files(model: FleetModel) -> list[str]:
    """The rule files the global Prometheus loads."""
    return [GLOBAL_INVENTORY, FLEET_RULES] if model.global_tier is not None else []
