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
from gpuobs.generators import efficiency
from gpuobs.gpus import slices_of
from gpuobs.health import COMPONENTS as HEALTH_COMPONENTS
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
HOST_GPUS = "host:gpus:count"
CLUSTER_ZERO = "0 * cluster:gpus:count"  # a cluster with no GPU counted shows 0, not nothing
MIG_FRACTION = "gpu_model:mig_compute_fraction:ratio"
MISSING_SERIES = "gpu:series_missing:bool"  # labelled `missing`: GPUs lacking series some alert reads
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

    def gpu(self, key: str, matcher: str = "", where: str = "") -> str:
        """A GPU-level metric, one series per physical GPU. `where` (`> 0`, `== 1`...) filters the
        series before the reduction: the largest of those passing is the largest of all whenever
        any passes, and reducing the few that pass costs nothing next to reducing every GPU's."""
        return self.per_gpu(self.raw(key, matcher) + (f" {where}" if where else ""))

    def gpu_increase(self, key: str, window: str = "5m", matcher: str = "", where: str = "") -> str:
        increase = f"increase({sel(getattr(self, key), self.job, matcher)}[{window}])"
        return self.per_gpu(increase + (f" {where}" if where else ""))

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
    GPU's own limits, not the last scrape, so they run in the static tier."""
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


def _recorder(model: FleetModel):
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
    return _recorder(model)("gpu:framebuffer_used:ratio", lambda n: (
        n.per_instance(_used_share(sel(n.fb_used, n.job), sel(n.fb_free, n.job)))
        if n.serves("fb_used") and n.serves("fb_free") else None))


def _read_fast(model: FleetModel, alert: str) -> bool:
    """Whether `alert` is enabled and runs in the fast group, so what it reads is recorded there."""
    return any(a.name == alert and not is_slow(model, a) for a in model.alerts)


def signal_rules(model: FleetModel) -> list[dict]:
    """The per-GPU series the fast alerts read that no raw series gives: the GPUs reporting per
    host, those past their warning temperature or power, and (for a fast GPUMemoryPressure) each
    GPU's framebuffer share. Rules of a group run in order, so the alerts after them
    in the same group see this evaluation's values, not the last one's. Everything else the
    alerts read is raw (filtered, then reduced per GPU) or configuration."""
    record = _recorder(model)
    rules = _framebuffer_share(model) if _read_fast(model, "GPUMemoryPressure") else []
    # GPUs reporting per host, for GPUMissing: a GPU gone from the scrape counts at once.
    h = model.prometheus.host_label
    rules += record(HOST_GPUS, lambda n: f"count by (cluster, {h}) ({_presence(n)})")
    for key, (name, _, _) in PAST_WARNING.items():
        rules += record(name, _served(key, lambda n, key=key: _past_warning(n, key)))
    return rules


# The GPUs past their warning threshold, recorded every evaluation (usually none): the warning
# alert reads them as they are, and the critical alert (its threshold is higher, the spec checks
# the order) compares only them with its own, instead of reading every GPU's reading again.
# {raw key: (recorded name, comparison, threshold name with {} for the level)}
PAST_WARNING = {
    "gpu_temp": ("gpu:temperature_past_warning:celsius", ">=", "gpu:temperature_{}_threshold:celsius"),
    "power_usage": ("gpu:power_usage_past_warning:watts", ">", "gpu:power_{}_threshold:watts"),
}


def _past_warning(n: Names, key: str) -> str:
    """A setup's raw `key` past its per-GPU warning threshold, filtered before the per-GPU
    reduction: the comparison passes few series, and it reads this scrape's value."""
    _, op, threshold = PAST_WARNING[key]
    past = f" {op} on (cluster, {n.host}, gpu) group_left () {sel(threshold.format('warning'), n.job)}"
    return n.per_gpu(n.raw(key) + past) if n.profile.has_label("gpu") else n.gpu(key) + past


def gpu_rules(model: FleetModel) -> list[dict]:
    """Per-GPU series for dashboards, trends, health, aggregates and the slow alerts. The fast
    alerts read temperature and power raw, so recording them every evaluation would only buy
    finer history; the GPU dashboard draws that from the raw series."""
    record = _recorder(model)
    rules = record("gpu:temperature:celsius", _served("gpu_temp", lambda n: n.gpu("gpu_temp")))
    rules += record("gpu:power_usage:watts", _served("power_usage", lambda n: n.gpu("power_usage")))
    rules += [] if _read_fast(model, "GPUMemoryPressure") else _framebuffer_share(model)
    rules += record(PRESENT, _presence)
    rules += record("gpu:utilization:ratio", lambda n: _utilization(n, model))
    if any(n.serves("power_usage") for n in names_of(model)):
        rules.append({"record": "gpu:power_usage:ratio_of_limit",
                      "expr": "gpu:power_usage:watts / gpu:power_limit:watts"})
    rules += record("gpu:clock_event_hw_throttle:active", _hw_throttle)
    return rules


def trend_rules(model: FleetModel) -> list[dict]:
    """Windowed figures: NVLink errors over 5 minutes, anomaly scores over the last hour, the time
    to the critical threshold over ten minutes. An evaluation every few minutes draws the same
    trend at a fraction of the cost."""
    ns = names_of(model)
    rules = _recorder(model)("gpu:nvlink_errors:increase5m", _nvlink_errors)
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
        # The critical threshold is in degrees for every GPU (T.Limit less its margin threshold
        # where the GPU reports one), so one form serves both.
        rules.append({"record": "gpu:temperature:seconds_to_critical",
                      "expr": "clamp_min(\n  (gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius)\n"
                              "  / (deriv(gpu:temperature:celsius[10m]) > 0),\n  0\n)"})
    return rules


def _hw_throttle(n: Names, active_only: bool = False) -> str | None:
    """1 per GPU with a hardware slowdown, thermal or power-brake clock event active, else 0; with
    `active_only`, only the GPUs at 1 (filtered before the per-GPU reduction, for the alert)."""
    flag = " == 1" if active_only else ""
    if n.profile.name == NVIDIA_GPU_EXPORTER:
        flags = sel("", f"__name__=~{quote(NVIDIA_SMI_HW_THROTTLE)}", n.job)
        return n.per_gpu(f"max without () ({flags}{flag})")
    if n.serves("clock_event_active"):
        flags = sel(n.clock_event_active, n.job, f"reason=~{quote('|'.join(HW_THROTTLE_REASONS))}")
        return f"max without (reason, {n.dropped}) ({flags}{flag})"
    if n.serves("clock_event_reasons"):
        # For the alert, only masks with a hardware bit possibly set (at least the lowest one) go
        # through the arithmetic, which copies every series it touches.
        lowest = min(CLOCK_EVENT_BITS[r] for r in HW_THROTTLE_REASONS)
        mask = n.gpu("clock_event_reasons", where=f">= {lowest}" if active_only else "")
        bits = " + ".join(f"(floor({mask} / {CLOCK_EVENT_BITS[r]}) % 2)" for r in HW_THROTTLE_REASONS)
        return f"({bits}) > bool 0{flag}"
    return None


NVLINK_ERROR_KINDS = (("nvlink_crc_flit_errors", "crc_flit"), ("nvlink_crc_data_errors", "crc_data"),
                      ("nvlink_replay_errors", "replay"), ("nvlink_recovery_errors", "recovery"))


def _nvlink_errors(n: Names) -> str | None:
    served = [(key, kind) for key, kind in NVLINK_ERROR_KINDS if n.serves(key)]
    if not served or not any(g.nvlink_links for g in n.model.models_of(n.exporter)):
        return None
    parts = "\nor\n".join(f'label_replace(increase({sel(getattr(n, key), n.job)}[5m]), "kind", "{kind}", "", "")'
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
            parts.append(f"0 * {n.gpu_increase('ecc_dbe_volatile', '1h', where='> 0')}")
        if n.serves("row_remap_failure"):
            parts.append(f"0 * {n.gpu('row_remap_failure', where='== 1')}")
        if n.serves("ecc_sbe_volatile"):
            parts.append(f"clamp(1 - {n.gpu_increase('ecc_sbe_volatile', '1h')} / 100, 0, 1)")
        if parts:
            ecc.append("\nor\n".join(parts))
    critical, warning = threshold_of(model, "power_critical_ratio"), threshold_of(model, "power_warning_ratio")
    components = {
        # Degrees to the critical threshold: for a GPU reporting its margin, the margin itself.
        "thermal": "clamp((gpu:temperature_critical_threshold:celsius - gpu:temperature:celsius) / 15, 0, 1)",
        # From warning (1) to critical (0); both thresholds are fractions of the limit, so one
        # recorded ratio gives it: (c·L - P) / (c·L - w·L) = (c - P/L) / (c - w).
        "power": by_model(model.gpu_models, lambda g: (critical(g), warning(g)), lambda m, v: (
            f"clamp(({num(v[0])} - {sel('gpu:power_usage:ratio_of_limit', m)}) / ({num(v[0])} - {num(v[1])}), 0, 1)")),
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
    """Per host and per cluster: they need per-GPU data, so they run next to it. A cluster's
    counts, sums and extremes come from its hosts' where the host series allow it (a few series per
    host, not one per GPU). The cluster level is all the fleet rules and the fleet overview read,
    which is what lets a global tier federate only these series."""
    ns = names_of(model)
    h = ns[0].host
    fb = [n for n in ns if n.serves("fb_used") and n.serves("fb_free")]

    def framebuffer(level: str, by: str) -> list[dict]:
        if not fb:
            return []
        # Workload labels split one instance's series by pod: shed them before summing.
        def total(key: str) -> str:
            return union([f"max without ({', '.join(WORKLOAD_LABELS)}) ({sel(getattr(n, key), n.job)})" for n in fb])

        used, free = (f"sum by ({by}) ({total(key)})" for key in ("fb_used", "fb_free"))
        return [{"record": f"{level}:gpu_framebuffer_used:ratio", "expr": _used_share(used, free)}]

    per_host = f"cluster, {h}"
    rules = [
        {"record": "host:gpu_utilization:avg", "expr": f"avg by ({per_host}) (gpu:utilization:ratio)"},
        {"record": "host:gpu_power_watts:sum", "expr": f"sum by ({per_host}) (gpu:power_usage:watts)"},
        {"record": "host:gpu_temperature_celsius:max", "expr": f"max by ({per_host}) (gpu:temperature:celsius)"},
        *framebuffer("host", per_host),
        {"record": "host:gpu_health_score:min", "expr": f"min by ({per_host}) (gpu:health:score)"},
        {"record": "cluster:gpus:count", "expr": f"sum by (cluster) ({HOST_GPUS})"},
        {"record": "cluster:gpu_utilization:avg", "expr": "avg by (cluster) (gpu:utilization:ratio)"},
        {"record": "cluster:gpu_power_watts:sum", "expr": "sum by (cluster) (host:gpu_power_watts:sum)"},
        {"record": "cluster:gpu_temperature_celsius:max",
         "expr": "max by (cluster) (host:gpu_temperature_celsius:max)"},
        *framebuffer("cluster", "cluster"),
        {"record": "cluster:gpu_health_score:min", "expr": "min by (cluster) (host:gpu_health_score:min)"},
    ]
    firing = f"count by (cluster, {h}, gpu) ({FIRING_GPU_ALERTS})"
    rules += [
        # Sum and count, so the fleet's average is exact whatever the clusters' sizes.
        {"record": "cluster:gpu_utilization:sum", "expr": "sum by (cluster) (gpu:utilization:ratio)"},
        {"record": "cluster:gpu_utilization:count", "expr": "count by (cluster) (gpu:utilization:ratio)"},
        {"record": "cluster:gpus_expected:count",
         "expr": f"sum by (cluster) ({ns[0].inventory_expected_gpus})"},
        {"record": "cluster:gpus_alerting:count", "expr": f"count by (cluster) ({firing})\nor\n{CLUSTER_ZERO}"},
        {"record": "cluster:gpus_healthy:count",
         "expr": f"count by (cluster) ({PRESENT} unless on (cluster, {h}, gpu) {FIRING_GPU_ALERTS})"
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
    """Each cluster's temperature distribution as cumulative buckets, like a Prometheus histogram:
    a rule per bucket, each reading every GPU, for a heatmap that shows minutes, not seconds."""
    rules = [{"record": "cluster:gpu_temperature_celsius:bucket",
              "expr": f"count by (cluster) (gpu:temperature:celsius <= {le})\nor\n{CLUSTER_ZERO}",
              "labels": {"le": str(le)}} for le in TEMPERATURE_BUCKETS]
    return rules + [{"record": "cluster:gpu_temperature_celsius:bucket",
                     "expr": "count by (cluster) (gpu:temperature:celsius)", "labels": {"le": "+Inf"}}]


def recorded(model: FleetModel) -> set[str]:
    """Every series name the fleet's recording rules produce: dashboards read only these."""
    rules = threshold_rules(model) + signal_rules(model) + gpu_rules(model) + trend_rules(model) + health_rules(model)
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


def global_inventory_rules(model: FleetModel) -> list[dict]:
    """Each cluster's expected GPUs from the spec, for the global tier: a cluster whose Prometheus
    cannot be reached still counts as expected there, so its GPUs show as missing."""
    return [{"record": "cluster:gpus_expected:count", "expr": f"vector({count})", "labels": {"cluster": cluster}}
            for cluster, count in expected_gpus(model).items()]


def federated_names(model: FleetModel) -> list[str]:
    """The cluster-level series a global tier federates: every cluster-level recording rule, once,
    except those the global tier records from the spec itself."""
    own = {r["record"] for r in global_inventory_rules(model)}
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


def _signals(model: FleetModel):
    """(alert, setup names, models it concerns, signal, the signal's keys the setup serves) for
    every signal an enabled GPU alert reads, per setup with GPU models the alert concerns."""
    for alert in model.alerts:
        d = alert.definition
        if d.scope != "gpu" or not d.needs:
            continue
        for n in names_of(model):
            models = applicable(n, d)
            for signal in d.needs if models else ():
                yield alert, n, models, signal, [k for k in signal if n.serves(k)]


def blind_rules(model: FleetModel) -> list[tuple[Alert, ExporterSetup, tuple[str, ...], str]]:
    """(alert it blinds, setup, missing metric names, expression) for every signal an enabled
    GPU alert reads that some GPU may lack: never served by the setup (fires for each of its
    GPUs), or served but absent for a GPU (a vGPU guest's temperature, a MIG GPU's row remap),
    which reads the GPUs coverage_rules records as missing those series.
    Event series (XIDs) appear only once an event happened, so only their static absence counts."""
    out = []
    for alert, n, models, signal, served in _signals(model):
        names = n.missing_names(signal)
        matcher = _only(models, n.model.models_of(n.exporter))
        if not served:
            out.append((alert, n.exporter, names, n.present(matcher)))
        elif _absence(n, served):
            label = f"missing={quote(' or '.join(names))}"
            out.append((alert, n.exporter, names, sel(MISSING_SERIES, n.job, label, matcher)))
    return out


def _absence(n: Names, served: list[str]) -> str | None:
    """The GPUs of a setup lacking every one of the `served` series, or None where no GPU can lack
    them: the series that makes a GPU present, and event series that exist only after an event."""
    if n.presence_key in served or all(k in EVENT_METRICS for k in served):
        return None
    # One selector for every name, and the series as they are (one per MIG instance or pod too):
    # `unless on` needs neither a union nor a per-GPU reduction, each of which costs more than
    # the comparison itself.
    metrics = [n.profile.metric(k) for k in served]
    present = sel(metrics[0], n.job) if len(metrics) == 1 else \
        sel("", f"__name__=~{quote(regex_alternatives(metrics))}", n.job)
    if not n.profile.has_label("gpu"):
        present = n.per_gpu(present)
    return f"{n.present()}\nunless on (cluster, {n.host}, gpu)\n{present}"


def coverage_rules(model: FleetModel) -> list[dict]:
    """One recording per setup and set of series some GPU may lack, labelled with their names:
    several alerts read the same series (the three thermal alerts read the temperature), and a
    check is as costly as a copy of every GPU's series, while the GPUAlertBlind rules reading its
    result (nothing, on a fleet that lacks nothing) cost nothing."""
    checks: dict[str, list[str]] = {}  # {missing: one check per setup}, a rule each (setups differ in `job`)
    for _, n, _, signal, served in _signals(model):
        check = _absence(n, served) if served else None
        if check:
            setups = checks.setdefault(" or ".join(n.missing_names(signal)), [])
            setups += [check] if check not in setups else []
    return [{"record": MISSING_SERIES, "expr": union(setups), "labels": {"missing": missing}}
            for missing, setups in checks.items()]


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
    temp = "gpu:temperature:celsius"

    def horizon_prediction(matcher: str, horizon: str) -> str:
        """Only near the limit: a GPU warming up after a job starts rises steeply far below it."""
        series = sel(temp, matcher)
        critical = "gpu:temperature_critical_threshold:celsius"
        return (f"predict_linear({series}[10m], {int(seconds(horizon))}) >= {critical}\n"
                f"and {series} <= {critical}\n"
                f"and {series} >= {critical} - {PREDICTION_NEAR_CELSIUS}")

    def past_warning(key: str, level: str) -> str:
        """The GPUs past their warning threshold, and with `level` those of them past that one."""
        name, op, threshold = PAST_WARNING[key]
        if not any(n.serves(key) for n in ns):
            return ""
        return f"{name} {op} {threshold.format(level)}" if level else name

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
    reporting = (f"{HOST_GPUS}\n    or on (cluster, {h})\n"
                 f"    0 * max by (cluster, {h}) ({up} == 1)")
    shortfall = (f"  {ns[0].inventory_expected_gpus}\n  - on (cluster, {h}) group_left ()\n"
                 f"  (\n    {reporting}\n  )\n  > 0")
    missing = f"(\n{shortfall}\n)"
    if lost:
        gpu_lost = union([n.gpu("gpu_up", where="== 0") for n in lost])
        # `or on (cluster, host)`: a host's shortfall only where no lost GPU of it is named.
        missing = (f"(1 - ({gpu_lost}))\n* on (cluster, {h}) group_left (gpu_model)\n"
                   f"({ns[0].inventory_expected_gpus} > bool 0)\nor on (cluster, {h})\n(\n{shortfall}\n)")
    exprs = {
        "GPUThermalWarning": past_warning("gpu_temp", ""),
        "GPUThermalCritical": past_warning("gpu_temp", "critical"),
        "GPUThermalCriticalPredicted": by_model(all_models, threshold_of(model, "thermal_prediction_horizon"),
                                                horizon_prediction),
        "GPUPowerSpike": past_warning("power_usage", ""),
        "GPUPowerCritical": past_warning("power_usage", "critical"),
        "GPUEccCorrectableSpike": per_setup("ecc_sbe_volatile", lambda n, models: by_model(
            models, threshold_of(model, "ecc_correctable_warning"),
            lambda m, v: n.gpu_increase("ecc_sbe_volatile", matcher=m, where=f">= {num(v)}"))),
        "GPUEccUncorrectable": per_setup("ecc_dbe_volatile",
                                         lambda n, _: n.gpu_increase("ecc_dbe_volatile", where="> 0")),
        "GPUThrottling": union([c for c in (_hw_throttle(n, active_only=True) for n in ns) if c] or [""]),
        "GPUMemoryPressure": by_model(all_models, threshold_of(model, "memory_used_warning_ratio"), lambda m, v: (
            f"100 * ({sel('gpu:framebuffer_used:ratio', m)} >= {num(v)})")),
        "GPURowRemapFailure": per_setup("row_remap_failure", lambda n, models: (
            n.gpu("row_remap_failure", _only(models, model.models_of(n.exporter)), "== 1")), "GPURowRemapFailure"),
        "GPURowRemapPending": union([c for n in ns for c in (
            [n.gpu("row_remap_pending", where="== 1")] if n.serves("row_remap_pending") else []) + (
            [n.gpu("retired_pending", where="> 0")] if n.serves("retired_pending") else [])] or [""]),
        "GPUNVLinkErrors": by_model(all_models, threshold_of(model, "nvlink_errors_warning"), lambda m, v: (
            f"{sel('gpu:nvlink_errors:increase5m', m)} > {num(v)}")),
        "GPUPCIeReplayErrors": per_setup("pcie_replay", lambda n, models: by_model(
            models, threshold_of(model, "pcie_replay_warning"),
            lambda m, v: n.gpu_increase("pcie_replay", matcher=m, where=f"> {num(v)}"))),
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


# Rule tiers. A group's cost is the series it reads per evaluation, so what moves slower than a
# scrape runs less often: derived per-GPU series, aggregates and the alerts that wait minutes
# anyway every SLOW evaluations; thresholds, the inventory and blind spots (which follow
# configuration), health and hour-long trends every STATIC evaluations. Both (evaluations, cap in
# seconds) stay well inside Prometheus' 5-minute lookback, so a recorded series never goes stale
# between two evaluations.
SLOW = (4, 60)
STATIC = (8, 120)
# An alert runs in the slow tier when its `for` is at least this many slow intervals (so the tier
# adds at most a quarter to it) and it is not critical: critical alerts reach the pager within
# `for` + 2 scrapes + 1 evaluation + group_wait.
SLOW_ALERT_INTERVALS = 4


def tier_interval(model: FleetModel, tier: tuple[int, int]) -> str:
    evaluations, cap = tier
    every = seconds(model.prometheus.evaluation_interval)
    return f"{math.ceil(max(every, min(every * evaluations, cap)))}s"


def is_slow(model: FleetModel, alert: Alert) -> bool:
    slow = seconds(tier_interval(model, SLOW))
    return alert.severity != "critical" and seconds(alert.for_) >= SLOW_ALERT_INTERVALS * slow


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


def _group(name: str, rules: list[dict], interval: str | None = None) -> list[dict]:
    if not rules:
        return []
    return [{"name": name, **({"interval": interval} if interval else {}), "rules": rules}]


def rule_groups(model: FleetModel) -> tuple[list[dict], list[dict]]:
    """(alerting groups, recording groups). The fast group holds the per-GPU signals and then the
    alerts that read them, so those alerts see the scrape they are evaluated after."""
    slow, static = tier_interval(model, SLOW), tier_interval(model, STATIC)
    by_name = {a.name: a for a in model.alerts}
    now, later, blind = [], [], []
    for rule in alert_rules(model):
        alert = rule["alert"]
        (blind if alert == BLIND_ALERT else later if is_slow(model, by_name[alert]) else now).append(rule)
    alerting = [*_group("gpuobs.alerts", signal_rules(model) + now),
                *_group("gpuobs.alerts.slow", later, slow),
                *_group("gpuobs.coverage", coverage_rules(model) + blind, static)]
    recording = [*_group("gpuobs.thresholds", threshold_rules(model) + mig_fraction_rules(model), static),
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
                    "gpuobs.alerts.slow", "gpuobs.coverage")


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
        }
    files = {RECORDING_RULES: {"groups": recording}, ALERT_RULES: alerts, FLEET_RULES: {"groups": [fleet]}}
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


def rule_files(model: FleetModel) -> list[str]:
    """Every rule file the model generates."""
    if not model.per_cluster:
        return list(RULE_FILES)
    files = [RECORDING_RULES, ALERT_RULES, FLEET_RULES] + [cluster_inventory(s.cluster) for s in model.servers]
    return files + ([GLOBAL_INVENTORY] if model.global_tier is not None else [])


def global_rule_files(model: FleetModel) -> list[str]:
    """The rule files the global Prometheus loads."""
    return [GLOBAL_INVENTORY, FLEET_RULES] if model.global_tier is not None else []
