"""Prometheus recording and alerting rules, built from the model and the metric catalog.

Rules are written per exporter setup: each reads exactly the series its exporter serves as
configured (never a run-time fallback between names that may not exist), and what it cannot
see is named by GPUAlertBlind. Thresholds are recorded as per-GPU series (gpu:*_threshold:*) so
alerts and dashboards share them: a GPU's own reported limit (max operating temperature,
enforced power limit) wins where served, and the figure for the model the spec's inventory puts
on the host (its `gpu_model` target label) is the fallback.
"""

from __future__ import annotations

import math

from gpuobs.alerts import BLIND_ALERT, AlertDef, render_annotation
from gpuobs.alerts import BY_NAME as ALERTS_BY_NAME
from gpuobs.catalog import (
    CLOCK_EVENT_BITS,
    DCGM_EXPORTER,
    DCGM_LABELS,
    EVENT_METRICS,
    GPU_IDENTITY,
    HW_THROTTLE_REASONS,
    MIG_IDENTITY,
    NVIDIA_GPU_EXPORTER,
    NVIDIA_SMI_HW_THROTTLE,
    WORKLOAD_LABELS,
)
from gpuobs.gpus import slices_of
from gpuobs.links import ALERT_PANELS
from gpuobs.model import Alert, ExporterSetup, FleetModel, Host
from gpuobs.promql import num, quote, regex_alternatives, sel
from gpuobs.spec.schema import seconds

# A blind spot (family coverage) says nothing about the GPU's own health.
FIRING_GPU_ALERTS = 'ALERTS{alertstate="firing", severity=~"critical|warning", family!="coverage"}'
TEMPERATURE_BUCKETS = tuple(range(30, 101, 5))  # °C: upper bounds of the temperature distribution, then +Inf
TOP_GPUS = 10  # rows of the fleet overview's hottest and least healthy tables
# GPUThermalCriticalPredicted looks at GPUs at most this far below their critical threshold.
PREDICTION_NEAR_CELSIUS = 15
XID_WINDOW = "15m"
PRESENT = "gpu:present:bool"  # 1 per GPU the exporter reports, whatever else it serves
MIG_FRACTION = "gpu_model:mig_compute_fraction:ratio"
# Series that tell a GPU is there, best first; every exporter serves at least one of them.
PRESENCE_KEYS = ("fb_used", "fb_free", "gpu_util", "gpu_temp", "power_usage", "sm_clock")


class Names:
    """Metric and label names of one exporter setup, and the selectors that read its series.

    With several setups in one fleet each reads only its own scrape job, so the rules for a
    dcgm-exporter host never read a gpuobs-exporter host's series and vice versa.
    """

    def __init__(self, model: FleetModel, exporter: ExporterSetup):
        self.model = model
        self.exporter = exporter
        self.profile = exporter.profile
        self.job = f"job={quote(exporter.job)}" if len(model.exporters) > 1 else ""

    def __getattr__(self, key: str) -> str:
        return self.profile.metric(key)

    def serves(self, key: str) -> bool:
        return self.profile.serves(key)

    @property
    def host(self) -> str:
        return self.model.prometheus.host_label

    def label(self, key: str) -> str:
        return self.profile.label(key)

    @property
    def mig(self) -> tuple[str, ...]:
        return tuple(self.profile.label(k) for k in MIG_IDENTITY if self.profile.has_label(k))

    @property
    def dropped(self) -> str:
        """Labels a GPU-level series sheds: MIG instance and workload labels."""
        return ", ".join(self.mig + WORKLOAD_LABELS)

    def raw(self, key: str, *matchers: str) -> str:
        """The series of a logical metric, in the catalog's unit."""
        selector = sel(getattr(self, key), self.job, *matchers)
        scale = self.profile.scale.get(key)
        return f"{selector} / {num(scale)}" if scale else selector

    def per_gpu(self, expr: str) -> str:
        """One series per physical GPU: dcgm-exporter repeats GPU-level values on every MIG
        instance's and every pod's series, which would otherwise raise one alert each."""
        if not self.profile.has_label("gpu"):  # nvidia_gpu_exporter: the UUID names the GPU
            return f'label_replace({expr}, "gpu", "$1", {quote(self.label("uuid"))}, "(.+)")'
        return f"max without ({self.dropped}) ({expr})"

    def per_instance(self, expr: str) -> str:
        """One series per MIG instance (per GPU without MIG): workload labels shed."""
        if not self.profile.has_label("gpu"):
            return self.per_gpu(expr)
        return f"max without ({', '.join(WORKLOAD_LABELS)}) ({expr})"

    def gpu(self, key: str, matcher: str = "") -> str:
        """A GPU-level metric, one series per physical GPU."""
        return self.per_gpu(self.raw(key, matcher))

    def gpu_increase(self, key: str, window: str = "5m", matcher: str = "") -> str:
        return self.per_gpu(f"increase({sel(getattr(self, key), self.job, matcher)}[{window}])")

    def present(self, matcher: str = "") -> str:
        return sel(PRESENT, self.job, matcher)

    def missing_names(self, signal: tuple[str, ...]) -> tuple[str, ...]:
        """A signal's series as this setup would name them: those it serves, else those its kind of
        exporter could serve in another configuration (what to enable), else all of them."""
        keys = [k for k in signal if self.serves(k)] or [k for k in signal if self.profile.could_serve(k)] or signal
        return tuple(self.profile.metric(k) for k in keys)

    @property
    def presence_key(self) -> str:
        """The series gpu:present:bool reads: a series every GPU of this setup has."""
        return "gpu_up" if self.serves("gpu_up") else next(k for k in PRESENCE_KEYS if self.serves(k))


def names_of(model: FleetModel) -> list[Names]:
    return [Names(model, e) for e in model.exporters]


def union(clauses: list[str]) -> str:
    """Clauses over disjoint series (one per exporter setup or per model), as one expression."""
    if len(clauses) == 1:
        return clauses[0]
    return "\nor\n".join(f"(\n  {c}\n)" for c in clauses)


def _model_matcher(models) -> str:
    return f"gpu_model=~{quote(regex_alternatives(m.key for m in models))}" if len(models) > 1 else \
        f"gpu_model={quote(models[0].key)}"


def by_model(models, value_of, condition) -> str:
    """`condition(matcher, value)` once per distinct value of `value_of(gpu model)` among `models`.

    Thresholds follow the spec's inventory: every series carries its host's `gpu_model` target
    label, whatever model name the GPU itself reports. When all models share the value there is
    no matcher at all, so a GPU of a target the spec does not list is covered too.
    """
    groups: dict = {}
    for gpu in models:
        groups.setdefault(value_of(gpu), []).append(gpu)
    if len(groups) == 1:
        return condition("", next(iter(groups)))
    return "\nor\n".join(f"({condition(_model_matcher(gpus), value)})" for value, gpus in groups.items())


def threshold_of(model: FleetModel, field: str):
    thresholds = dict((gpu.key, t) for gpu, t in model.thresholds)
    return lambda gpu: getattr(thresholds[gpu.key], field)


def _temperature_threshold(n: Names, model: FleetModel, level: str) -> str:
    """The GPU's own max operating temperature where served, else the model's figure."""
    figure = threshold_of(model, f"gpu_temp_{level}")
    offset = threshold_of(model, "gpu_temp_max_op_offset_warning")

    def condition(m, values):
        value, off = values
        fallback = f"0 * {n.gpu('gpu_temp', m)} + {num(value)}"
        if not n.serves("gpu_max_op_temp"):
            return fallback
        own = n.gpu("gpu_max_op_temp", m) + (f" - {num(off)}" if level == "warning" else "")
        return f"{own}\n  or\n  {fallback}"

    return by_model(model.models_of(n.exporter), lambda g: (figure(g), offset(g) if level == "warning" else 0),
                    condition)


def threshold_rules(model: FleetModel) -> list[dict]:
    """Per-GPU thresholds, so alerts and dashboards share them."""
    ns = [n for n in names_of(model) if n.serves("gpu_temp")]
    rules = []
    if ns:
        for level in ("warning", "critical"):
            rules.append({"record": f"gpu:temperature_{level}_threshold:celsius",
                          "expr": union([_temperature_threshold(n, model, level) for n in ns])})
    margin = [n for n in names_of(model) if n.serves("gpu_temp_margin")]
    for level in ("warning", "critical") if margin else ():
        value = threshold_of(model, f"gpu_temp_margin_{level}")
        rules.append({"record": f"gpu:temperature_margin_{level}_threshold:celsius", "expr": union([
            by_model(model.models_of(n.exporter), value,
                     lambda m, v, n=n: f"0 * {n.gpu('gpu_temp_margin', m)} + {num(v)}")
            for n in margin])})
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
        own = [n.gpu(key, m) for key in ("enforced_power_limit", "power_limit") if n.serves(key)]
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


def gpu_rules(model: FleetModel) -> list[dict]:
    ns = names_of(model)

    def record(name: str, build) -> list[dict]:
        clauses = [c for c in (build(n) for n in ns) if c]
        return [{"record": name, "expr": union(clauses)}] if clauses else []

    def served(key, build):
        return lambda n: build(n) if n.serves(key) else None

    rules = record(PRESENT, _presence)
    rules += record("gpu:temperature:celsius", served("gpu_temp", lambda n: n.gpu("gpu_temp")))
    rules += record("gpu:temperature_margin:celsius", served("gpu_temp_margin", lambda n: n.gpu("gpu_temp_margin")))
    rules += record("gpu:power_usage:watts", served("power_usage", lambda n: n.gpu("power_usage")))
    if any(n.serves("power_usage") for n in ns):
        rules.append({"record": "gpu:power_usage:ratio_of_limit",
                      "expr": "gpu:power_usage:watts / gpu:power_limit:watts"})
    rules += record("gpu:utilization:ratio", lambda n: _utilization(n, model))
    # Per MIG instance: each has its own framebuffer share; workload labels are shed.
    rules += record("gpu:framebuffer_used:ratio", lambda n: (
        n.per_instance(f"{n.raw('fb_used')} / ({n.raw('fb_used')} + {n.raw('fb_free')})")
        if n.serves("fb_used") and n.serves("fb_free") else None))
    rules += record("gpu:clock_event_hw_throttle:active", _hw_throttle)
    rules += record("gpu:nvlink_errors:increase5m", _nvlink_errors)
    if any(n.serves("gpu_temp") for n in ns):
        # z-scores against the GPU's own last hour; the floor keeps a steady GPU from turning
        # sensor noise into huge scores.
        rules.append({"record": "gpu:temperature:zscore_1h",
                      "expr": "(gpu:temperature:celsius - avg_over_time(gpu:temperature:celsius[1h]))\n"
                              "/ clamp_min(stddev_over_time(gpu:temperature:celsius[1h]), 1)"})
    if any(n.serves("power_usage") for n in ns):
        rules.append({"record": "gpu:power_usage:zscore_1h",
                      "expr": "(gpu:power_usage:watts - avg_over_time(gpu:power_usage:watts[1h]))\n"
                              "/ clamp_min(stddev_over_time(gpu:power_usage:watts[1h]), 5)"})
    if any(n.serves("gpu_temp") for n in ns):
        by_degrees = ("clamp_min(\n  (gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius)\n"
                      "  / (deriv(gpu:temperature:celsius[10m]) > 0),\n  0\n)")
        by_margin = ("clamp_min(\n  (gpu:temperature_margin:celsius - "
                     "gpu:temperature_margin_critical_threshold:celsius)\n"
                     "  / -(deriv(gpu:temperature_margin:celsius[10m]) < 0),\n  0\n)\nor\n")
        rules.append({"record": "gpu:temperature:seconds_to_critical",
                      "expr": (by_margin if any(n.serves("gpu_temp_margin") for n in ns) else "") + by_degrees})
    return rules


def _hw_throttle(n: Names) -> str | None:
    if n.profile.name == NVIDIA_GPU_EXPORTER:
        flags = sel("", f"__name__=~{quote(NVIDIA_SMI_HW_THROTTLE)}", n.job)
        return n.per_gpu(f"max without () ({flags})")
    if n.serves("clock_event_active"):
        flags = sel(n.clock_event_active, n.job, f"reason=~{quote('|'.join(HW_THROTTLE_REASONS))}")
        return f"max without (reason, {n.dropped}) ({flags})"
    if n.serves("clock_event_reasons"):
        mask = n.gpu("clock_event_reasons")
        bits = " + ".join(f"(floor({mask} / {CLOCK_EVENT_BITS[r]}) % 2)" for r in HW_THROTTLE_REASONS)
        return f"({bits}) > bool 0"
    return None


NVLINK_ERROR_KINDS = (("nvlink_crc_flit_errors", "crc_flit"), ("nvlink_crc_data_errors", "crc_data"),
                      ("nvlink_replay_errors", "replay"), ("nvlink_recovery_errors", "recovery"))


def _nvlink_errors(n: Names) -> str | None:
    served = [(key, kind) for key, kind in NVLINK_ERROR_KINDS if n.serves(key)]
    if not served or not any(g.nvlink_links for g in n.model.models_of(n.exporter)):
        return None
    parts = "\nor\n".join(f'label_replace({n.gpu_increase(key)}, "kind", "{kind}", "", "")' for key, kind in served)
    return f"sum without (kind) (\n{parts}\n)"


HEALTH_COMPONENTS = ("thermal", "power", "memory", "ecc", "throttle")


def health_rules(model: FleetModel) -> list[dict]:
    """The health score: five components in 0..1 (1 = healthy), averaged per GPU.

    A component whose inputs the exporter does not serve counts as healthy, so every GPU the
    exporter reports gets a score.
    """
    ns = names_of(model)
    healthy = f"0 * {PRESENT} + 1"
    margin = any(n.serves("gpu_temp_margin") for n in ns)
    thermal = "clamp((gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius) / 15, 0, 1)"
    ecc = []
    for n in ns:
        parts = []
        if n.serves("ecc_dbe_volatile"):
            parts.append(f"0 * ({n.gpu_increase('ecc_dbe_volatile', '1h')} > 0)")
        if n.serves("row_remap_failure"):
            parts.append(f"0 * ({n.gpu('row_remap_failure')} == 1)")
        if n.serves("ecc_sbe_volatile"):
            parts.append(f"clamp(1 - {n.gpu_increase('ecc_sbe_volatile', '1h')} / 100, 0, 1)")
        if parts:
            ecc.append("\nor\n".join(parts))
    components = {
        "thermal": ("clamp(gpu:temperature_margin:celsius / 15, 0, 1)\nor\n" if margin else "") + thermal,
        "power": "clamp(\n  (gpu:power_critical_threshold:watts - gpu:power_usage:watts)\n"
                 "  / (gpu:power_critical_threshold:watts - gpu:power_warning_threshold:watts),\n  0, 1\n)",
        # The fullest MIG instance speaks for its GPU.
        "memory": f"min without ({', '.join(_all_mig_labels(model))}) "
                  "(clamp((1 - gpu:framebuffer_used:ratio) / 0.1, 0, 1))",
        "ecc": "\nor\n".join(ecc),
        "throttle": "1 - avg_over_time(gpu:clock_event_hw_throttle:active[10m])",
    }
    rules = [{"record": f"gpu:health_{name}:score", "expr": f"(\n{expr}\n)\nor\n{healthy}" if expr else healthy}
             for name, expr in components.items()]
    rules.append({"record": "gpu:health:score",
                  "expr": "(\n" + "\n+ ".join(f"gpu:health_{c}:score" for c in HEALTH_COMPONENTS)
                          + f"\n) / {len(HEALTH_COMPONENTS)}"})
    return rules


def _all_mig_labels(model: FleetModel) -> list[str]:
    labels = list(dict.fromkeys(label for n in names_of(model) for label in n.mig))
    return labels or [DCGM_LABELS[k] for k in MIG_IDENTITY]


def aggregate_rules(model: FleetModel) -> list[dict]:
    """Per host and per cluster: they need per-GPU data, so they run next to it. The cluster level
    is all the fleet rules and the fleet overview read, which is what lets a global tier federate
    only these series."""
    ns = names_of(model)
    h = ns[0].host
    fb = [n for n in ns if n.serves("fb_used") and n.serves("fb_free")]
    rules = []
    for level, by in (("host", f"cluster, {h}"), ("cluster", "cluster")):
        rules += [
            {"record": f"{level}:gpus:count", "expr": f"count by ({by}) ({PRESENT})"},
            {"record": f"{level}:gpu_utilization:avg", "expr": f"avg by ({by}) (gpu:utilization:ratio)"},
            {"record": f"{level}:gpu_power_watts:sum", "expr": f"sum by ({by}) (gpu:power_usage:watts)"},
            {"record": f"{level}:gpu_temperature_celsius:max",
             "expr": f"max by ({by}) (gpu:temperature:celsius)"},
        ]
        if fb:
            # Workload labels split one instance's series by pod: shed them before summing.
            used = union([f"max without ({', '.join(WORKLOAD_LABELS)}) ({n.raw('fb_used')})" for n in fb])
            free = union([f"max without ({', '.join(WORKLOAD_LABELS)}) ({n.raw('fb_free')})" for n in fb])
            rules.append({"record": f"{level}:gpu_framebuffer_used:ratio",
                          "expr": f"sum by ({by}) ({used})\n/\n(sum by ({by}) ({used}) + sum by ({by}) ({free}))"})
        rules.append({"record": f"{level}:gpu_health_score:min", "expr": f"min by ({by}) (gpu:health:score)"})
    zero = f"0 * count by (cluster) ({PRESENT})"  # a cluster with none shows 0, not nothing
    firing = f"count by (cluster, {h}, gpu) ({FIRING_GPU_ALERTS})"
    rules += [
        {"record": "cluster:gpus_expected:count",
         "expr": f"sum by (cluster) ({ns[0].inventory_expected_gpus})"},
        {"record": "cluster:gpus_alerting:count", "expr": f"count by (cluster) ({firing})\nor\n{zero}"},
        {"record": "cluster:gpus_healthy:count",
         "expr": f"count by (cluster) ({PRESENT} unless on (cluster, {h}, gpu) {FIRING_GPU_ALERTS})"
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


def recorded(model: FleetModel) -> set[str]:
    """Every series name the fleet's recording rules produce: dashboards read only these."""
    rules = threshold_rules(model) + gpu_rules(model) + health_rules(model) + aggregate_rules(model)
    return {r["record"] for r in rules + fleet_rules(model)}


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
    metric = names_of(model)[0].inventory_expected_gpus
    return [{"record": metric, "expr": f"vector({host.gpu_count})", "labels": inventory_labels(model, host)}
            for host in model.hosts if cluster in (None, host.cluster)]


def applicable(n: Names, definition: AlertDef):
    """The setup's GPU models an alert concerns (NVLink errors only where there are links...)."""
    return [g for g in n.model.models_of(n.exporter) if definition.concerns(g)]


def _only(models, of_setup) -> str:
    """A matcher for `models` when they are not all of the setup's models."""
    return "" if len(models) == len(of_setup) else _model_matcher(models)


def exporter_jobs(model: FleetModel) -> str:
    jobs = [e.job for e in model.exporters]
    return f"job={quote(jobs[0])}" if len(jobs) == 1 else f"job=~{quote(regex_alternatives(jobs))}"


def _xid(n: Names, codes) -> str | None:
    """XIDs of one tier: our counter's increase, else dcgm-exporter's windowed count, else the
    last-value gauge (which misses a second XID of the same code)."""
    h = n.host
    pattern = quote("|".join(str(c) for c in codes))
    clauses, seen = [], []
    if n.serves("xid_errors"):
        counter = sel(n.xid_errors, n.job, f"xid=~{pattern}")
        clauses += [f"increase({counter}[{XID_WINDOW}]) > 0", f"{counter} > 0 unless {counter} offset {XID_WINDOW}"]
        seen.append(sel(n.xid_errors, n.job))
    if n.serves("xid_window_count"):
        # A gauge over dcgm-exporter's sliding window (default 5m): it falls again, so never rate() it.
        window = sel(n.xid_window_count, n.job, f"xid=~{pattern}")
        clauses.append(f"max without ({n.dropped}, window_size_in_ms) (max_over_time({window}[{XID_WINDOW}])) > 0")
        seen.append(sel(n.xid_window_count, n.job))
    if n.serves("xid_last"):
        gauge = "\nor\n".join(f'label_replace({n.gpu("xid_last")} == {c}, "xid", "{c}", "", "")' for c in codes)
        if seen:
            gauge = f"(\n{gauge}\n) unless on (cluster, {h}, gpu) ({' or '.join(seen)})"
        clauses.append(gauge)
    return "\nor\n".join(f"({c})" if "\n" in c or " or " in c else c for c in clauses) if clauses else None


def _stale(n: Names, model: FleetModel) -> str | None:
    """Readings frozen: our exporter says when it last collected; for others, no GPU of the host
    advanced its energy counter (which grows whenever a GPU draws any power)."""
    stale = model.prometheus.exporter_stale_seconds
    if n.serves("exporter_last_success"):
        return f"time() - {sel(n.exporter_last_success, n.job)} > {stale}"
    if n.serves("total_energy"):
        identity = [n.profile.label(k) for k in (*GPU_IDENTITY, "driver_version") if n.profile.has_label(k)]
        identity += [name for name in ("Hostname", "hostname") if name not in identity]  # 3.x/4.x spell it both ways
        drop = ", ".join(identity + list(n.mig) + list(WORKLOAD_LABELS))
        # Compared with its value a window ago, not changes() over the window: a target scraped once
        # has a one-sample window with no change, which would read as frozen.
        energy = sel(n.total_energy, n.job)
        return f"(max without ({drop}) ({energy} - {energy} offset {stale}s) == 0) + {stale}"
    return None


def blind_rules(model: FleetModel) -> list[tuple[Alert, ExporterSetup, tuple[str, ...], str]]:
    """(alert it blinds, setup, missing metric names, expression) for every signal an enabled
    GPU alert reads that some GPU may lack: never served by the setup (fires for each of its
    GPUs), or served but absent for a GPU (a vGPU guest's temperature, a MIG GPU's row remap).
    Event series (XIDs) appear only once an event happened, so only their static absence counts."""
    out = []
    for alert in model.alerts:
        d = alert.definition
        if d.scope != "gpu" or not d.needs:
            continue
        for n in names_of(model):
            models = applicable(n, d)
            if not models:
                continue
            matcher = _only(models, n.model.models_of(n.exporter))
            base = n.present(matcher)
            for signal in d.needs:
                served = [k for k in signal if n.serves(k)]
                names = n.missing_names(signal)
                if not served:
                    out.append((alert, n.exporter, names, base))
                elif n.presence_key in served:
                    continue  # the series that makes a GPU present: a GPU without it is not counted at all
                elif not all(k in EVENT_METRICS for k in served):
                    present = " or ".join(sel(n.profile.metric(k), n.job) for k in served)
                    out.append((alert, n.exporter, names,
                                f"{base}\nunless on (cluster, {n.host}, gpu)\n{n.per_gpu(present)}"))
    return out


def blind_remedy(exporter: ExporterSetup, missing: tuple[str, ...]) -> str:
    if exporter.kind == DCGM_EXPORTER:
        if any(name in exporter.counters for name in missing):
            return ("The counter is enabled, but this GPU does not report it (a vGPU guest, a MIG GPU, a driver "
                    "without it).")
        field = next((name for name in missing if name.startswith("DCGM_")), missing[0])
        return (f"Add {field} to dcgm-exporter's counters CSV (`counters: gpuobs` in the spec generates one with "
                "every field gpuobs reads), or disable the alert in the spec.")
    if exporter.kind == NVIDIA_GPU_EXPORTER:
        return ("nvidia_gpu_exporter does not serve it; monitor this GPU with gpuobs-exporter or dcgm-exporter, "
                "or disable the alert in the spec.")
    return "The GPU or its driver does not report it (a vGPU guest, a MIG GPU, an old driver); check nvidia-smi -q."


def alert_expressions(model: FleetModel) -> dict[str, str]:
    ns = names_of(model)
    h = ns[0].host
    up = sel("up", exporter_jobs(model))
    temp, margin = "gpu:temperature:celsius", "gpu:temperature_margin:celsius"
    has_margin = any(n.serves("gpu_temp_margin") for n in ns)

    def thermal(threshold: str, op: str) -> str:
        """The T.Limit margin where the GPU reports one, else degrees against the threshold."""
        degrees = f"{temp} {op} gpu:temperature_{threshold}_threshold:celsius"
        if not has_margin:
            return degrees
        return (f"({temp} and ({margin} <= gpu:temperature_margin_{threshold}_threshold:celsius))\nor\n"
                f"({degrees} unless {margin})")

    def horizon_prediction(matcher: str, horizon: str) -> str:
        """Only near the limit: a GPU warming up after a job starts rises steeply far below it."""
        series = sel(temp, matcher)
        critical = "gpu:temperature_critical_threshold:celsius"
        return (f"predict_linear({series}[10m], {int(seconds(horizon))}) >= {critical}\n"
                f"and {series} <= {critical}\n"
                f"and {series} >= {critical} - {PREDICTION_NEAR_CELSIUS}")

    def per_setup(key: str, build, alert: str | None = None) -> str:
        """`build(names, models)` for every setup serving `key`, over the models `alert` concerns."""
        clauses = []
        for n in ns:
            models = applicable(n, ALERTS_BY_NAME[alert]) if alert else list(model.models_of(n.exporter))
            if n.serves(key) and models:
                clauses.append(build(n, models))
        return union(clauses) if clauses else ""

    all_models = model.gpu_models
    lost = [n for n in ns if n.serves("gpu_up")]
    reporting = (f"count by (cluster, {h}) ({PRESENT})\n    or on (cluster, {h})\n"
                 f"    0 * max by (cluster, {h}) ({up} == 1)")
    shortfall = (f"  {ns[0].inventory_expected_gpus}\n  - on (cluster, {h}) group_left ()\n"
                 f"  (\n    {reporting}\n  )\n  > 0")
    missing = f"(\n{shortfall}\n)"
    if lost:
        gpu_up = union([n.gpu("gpu_up") for n in lost])
        missing = (f"(1 - ({gpu_up} == 0))\n* on (cluster, {h}) group_left (gpu_model)\n"
                   f"({ns[0].inventory_expected_gpus} > bool 0)\nor\n(\n{shortfall}\n"
                   f"  unless on (cluster, {h}) ({gpu_up} == 0)\n)")
    exprs = {
        "GPUThermalWarning": thermal("warning", ">="),
        "GPUThermalCritical": thermal("critical", ">"),
        "GPUThermalCriticalPredicted": by_model(all_models, threshold_of(model, "thermal_prediction_horizon"),
                                                horizon_prediction),
        "GPUPowerSpike": "gpu:power_usage:watts > gpu:power_warning_threshold:watts",
        "GPUPowerCritical": "gpu:power_usage:watts > gpu:power_critical_threshold:watts",
        "GPUEccCorrectableSpike": per_setup("ecc_sbe_volatile", lambda n, models: by_model(
            models, threshold_of(model, "ecc_correctable_warning"),
            lambda m, v: f"{n.gpu_increase('ecc_sbe_volatile', matcher=m)} >= {num(v)}")),
        "GPUEccUncorrectable": per_setup("ecc_dbe_volatile", lambda n, _: f"{n.gpu_increase('ecc_dbe_volatile')} > 0"),
        "GPUThrottling": "gpu:clock_event_hw_throttle:active == 1",
        "GPUMemoryPressure": by_model(all_models, threshold_of(model, "memory_used_warning_ratio"), lambda m, v: (
            f"100 * {sel('gpu:framebuffer_used:ratio', m)} >= {num(v * 100)}")),
        "GPURowRemapFailure": per_setup("row_remap_failure", lambda n, models: (
            f"{n.gpu('row_remap_failure', _only(models, model.models_of(n.exporter)))} == 1"), "GPURowRemapFailure"),
        "GPURowRemapPending": union([c for n in ns for c in (
            [f"{n.gpu('row_remap_pending')} == 1"] if n.serves("row_remap_pending") else []) + (
            [f"{n.gpu('retired_pending')} > 0"] if n.serves("retired_pending") else [])] or [""]),
        "GPUNVLinkErrors": by_model(all_models, threshold_of(model, "nvlink_errors_warning"), lambda m, v: (
            f"{sel('gpu:nvlink_errors:increase5m', m)} > {num(v)}")),
        "GPUPCIeReplayErrors": per_setup("pcie_replay", lambda n, models: by_model(
            models, threshold_of(model, "pcie_replay_warning"),
            lambda m, v: f"{n.gpu_increase('pcie_replay', matcher=m)} > {num(v)}")),
        "GPUHealthLow": by_model(all_models, threshold_of(model, "health_score_warning"), lambda m, v: (
            f"{sel('gpu:health:score', m)} < {num(v)}")),
        # A GPU the exporter reports lost is named; otherwise only the shortfall of the host is known.
        "GPUMissing": missing,
        "GPUExporterDown": (f"{up} == 0\nor on (cluster, {h})\n"
                            f"({ns[0].inventory_expected_gpus} unless on (cluster, {h}) {up})"),
        "GPUExporterStale": union([c for c in (_stale(n, model) for n in ns) if c] or [""]),
    }
    for alert in model.alerts:
        if alert.definition.xid_codes:
            exprs[alert.name] = union([c for c in (_xid(n, alert.definition.xid_codes) for n in ns) if c] or [""])
    return exprs


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
    return [a for a in model.alerts if can_fire(model, a) and (a.name != BLIND_ALERT or blind_rules(model))]


def alert_annotations(model: FleetModel, alert: Alert, fill: dict | None = None) -> dict[str, str]:
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
        "description": _filled(host_label(d.description), fill or {}),
        "runbook_url": f"{model.runbook_url}#{d.name.lower()}",
        "dashboard_url": url,
    }


def _filled(template: str, fill: dict) -> str:
    for key, value in fill.items():
        template = template.replace("{" + key + "}", value)
    return template


def blind_fill(model: FleetModel, blinded: Alert, missing: tuple[str, ...]) -> dict:
    """What a GPUAlertBlind rule's description says about the alert it stands in for; one rule
    covers every setup missing the same series, naming each setup's remedy where they differ."""
    setups = [e for b, e, m, _ in blind_rules(model) if b.name == blinded.name and m == missing]
    remedies = {e.job: blind_remedy(e, missing) for e in setups}
    remedy = next(iter(remedies.values())) if len(set(remedies.values())) == 1 else \
        " ".join(f"On {job}: {text}" for job, text in remedies.items())
    return {"missing": " or ".join(missing), "blind_alert": blinded.name, "remedy": remedy}


def expected_annotations(model: FleetModel, alert: Alert, labels: dict[str, str], value: float,
                         fill: dict | None = None) -> dict:
    """The annotations Prometheus renders for an alert with these labels and value."""
    return {k: render_annotation(v, labels, value) for k, v in alert_annotations(model, alert, fill).items()}


COVERAGE_EVALUATIONS = 4  # GPUAlertBlind's group runs once every this many evaluation intervals


def coverage_interval(model: FleetModel) -> str:
    return f"{math.ceil(seconds(model.prometheus.evaluation_interval) * COVERAGE_EVALUATIONS)}s"


def alert_rules(model: FleetModel) -> list[dict]:
    exprs = alert_expressions(model)
    rules = []
    for a in active_alerts(model):
        if a.name != BLIND_ALERT:
            rules.append({"alert": a.name, "expr": exprs[a.name], "for": a.for_, "labels": alert_labels(model, a),
                          "annotations": alert_annotations(model, a)})
            continue
        merged: dict[tuple, tuple[Alert, list[str]]] = {}
        for blinded, _exporter, missing, expr in blind_rules(model):
            merged.setdefault((blinded.name, missing), (blinded, []))[1].append(expr)
        for (_name, missing), (blinded, exprs) in merged.items():
            labels = {**alert_labels(model, a), "blind_alert": blinded.name, "missing": " or ".join(missing)}
            rules.append({"alert": a.name, "expr": union(exprs), "for": a.for_, "labels": labels,
                          "annotations": alert_annotations(model, a, blind_fill(model, blinded, missing))})
    return rules


def generate(model: FleetModel) -> dict[str, dict]:
    """{relative path: document} for the rule files: one set for the fleet's one Prometheus, or
    shared cluster-tier files, each cluster's inventory and the fleet rules in a file of their own."""
    rules = alert_rules(model)
    groups = [{"name": "gpuobs.alerts", "rules": [r for r in rules if r["alert"] != BLIND_ALERT]}]
    blind = [r for r in rules if r["alert"] == BLIND_ALERT]
    if blind:
        # Blind spots change with configuration, not from one scrape to the next, and GPUAlertBlind
        # waits its `for` anyway: checked every few evaluations, at a fraction of the cost.
        groups.append({"name": "gpuobs.coverage", "interval": coverage_interval(model), "rules": blind})
    alerts = {"groups": groups}
    recording = [
        {"name": "gpuobs.thresholds", "rules": threshold_rules(model) + mig_fraction_rules(model)},
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
