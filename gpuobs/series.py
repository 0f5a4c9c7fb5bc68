"""The series an exporter setup serves, and PromQL over them, shared by the rules generator and
the alert catalog (each alert builds its own expression from these).

Nothing here imports the model at run time: the model imports the alert catalog, which imports
this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuobs.catalog import (
    CLOCK_EVENT_BITS,
    HW_THROTTLE_REASONS,
    MIG_IDENTITY,
    NVIDIA_GPU_EXPORTER,
    NVIDIA_SMI_HW_THROTTLE,
    WORKLOAD_LABELS,
)
from gpuobs.promql import num, quote, regex_alternatives, sel

if TYPE_CHECKING:
    from gpuobs.alerts.base import AlertDef
    from gpuobs.model import ExporterSetup, FleetModel

PRESENT = "gpu:present:bool"  # 1 per GPU the exporter reports, whatever else it serves
HOST_GPUS = "host:gpus:count"
# 1 per GPU with a hardware slowdown, thermal or power-brake clock event active, else 0 (hw_throttle).
HW_THROTTLE = "gpu:clock_event_hw_throttle:active"
NVLINK_ERRORS = "gpu:nvlink_errors:increase5m"  # per GPU with NVLink errors in the last 5 minutes, only those
# Series that tell a GPU is there, best first; every exporter serves at least one of them.
PRESENCE_KEYS = ("fb_used", "fb_free", "gpu_util", "gpu_temp", "power_usage", "sm_clock")
# Per allocation (a GPU or MIG instance a pod or HPC job holds), recorded by the efficiency rules
# (generators/efficiency.py) and read by the idle-allocation alert: how busy it is, and whether
# that is under the spec's idle threshold.
ALLOCATED_UTILIZATION = "gpu:allocated_utilization:ratio"
ALLOCATED_IDLE = "gpu:allocated_idle:bool"


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


def can_attribute(n: Names) -> bool:
    """Whether a setup's GPU series can name who holds the GPU (a pod or HPC job label beside the
    `gpu` label): gpuobs-exporter's and dcgm-exporter's mappings can; nvidia_gpu_exporter names none."""
    return n.profile.has_label("gpu")


def names_of(model: FleetModel) -> list[Names]:
    return [Names(model, e) for e in model.exporters]


def union(clauses: list[str]) -> str:
    """Clauses over disjoint series (one per exporter setup or per model), as one expression."""
    if len(clauses) == 1:
        return clauses[0]
    return "\nor\n".join(f"(\n  {c}\n)" for c in clauses)


def each_setup(ns: list[Names], build) -> str:
    """`build(names)` for every setup it gives a clause for, as one expression ("" for none)."""
    return union([c for c in (build(n) for n in ns) if c] or [""])


def model_matcher(models) -> str:
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
    return "\nor\n".join(f"({condition(model_matcher(gpus), value)})" for value, gpus in groups.items())


def threshold_of(model: FleetModel, field: str):
    thresholds = dict((gpu.key, t) for gpu, t in model.thresholds)
    return lambda gpu: getattr(thresholds[gpu.key], field)


def applicable(n: Names, definition: AlertDef):
    """The setup's GPU models an alert concerns (NVLink errors only where there are links...)."""
    return [g for g in n.model.models_of(n.exporter) if definition.concerns(g)]


def per_setup(ns: list[Names], definition: AlertDef, key: str, build) -> str:
    """`build(names, models)` for every setup serving `key`, over the models the alert concerns."""
    clauses = []
    for n in ns:
        models = applicable(n, definition)
        if n.serves(key) and models:
            clauses.append(build(n, models))
    return union(clauses) if clauses else ""


def increase_past(ns: list[Names], definition: AlertDef, model: FleetModel, key: str, op: str,
                  threshold: str) -> str:
    """A counter's 5-minute increase per GPU past its model's `threshold` (a Thresholds field), on
    every setup serving it."""
    return per_setup(ns, definition, key, lambda n, models: by_model(
        models, threshold_of(model, threshold),
        lambda m, v: n.gpu_increase(key, matcher=m, where=f"{op} {num(v)}")))


def recorded_past(model: FleetModel, series: str, op: str, threshold: str) -> str:
    """A recorded per-GPU series past its model's `threshold` (a Thresholds field)."""
    return by_model(model.gpu_models, threshold_of(model, threshold), lambda m, v: f"{sel(series, m)} {op} {num(v)}")


def only(models, of_setup) -> str:
    """A matcher for `models` when they are not all of the setup's models."""
    return "" if len(models) == len(of_setup) else model_matcher(models)


def exporter_jobs(model: FleetModel) -> str:
    jobs = [e.job for e in model.exporters]
    return f"job={quote(jobs[0])}" if len(jobs) == 1 else f"job=~{quote(regex_alternatives(jobs))}"


def exporter_up(model: FleetModel) -> str:
    """The scrape health of every GPU exporter."""
    return sel("up", exporter_jobs(model))


# The GPUs past their warning threshold, recorded every evaluation (usually none): the warning
# alert reads them as they are, and the critical alert (its threshold is higher, the spec checks
# the order) compares only them with its own, instead of reading every GPU's reading again.
# {raw key: (recorded name, comparison, threshold name with {} for the level)}
PAST_WARNING = {
    "gpu_temp": ("gpu:temperature_past_warning:celsius", ">=", "gpu:temperature_{}_threshold:celsius"),
    "power_usage": ("gpu:power_usage_past_warning:watts", ">", "gpu:power_{}_threshold:watts"),
}


# The GPU's own readings a threshold follows where a setup serves them (see threshold_rules),
# the first one served winning; a setup serving none of them has the model's figure for every GPU.
POWER_LIMIT_SOURCES = ("enforced_power_limit", "power_limit")
OWN_LIMITS = {"gpu_temp": ("gpu_temp_margin", "gpu_max_op_temp"), "power_usage": POWER_LIMIT_SOURCES}


def fixed_threshold(n: Names, key: str, level: str):
    """The `level` threshold of `key` per GPU model where it is the model's figure on every GPU
    of the setup (as on dcgm-exporter's default counters), else None. A constant in the rule
    spares a join with the recorded thresholds every evaluation: at 10,000 GPUs the join was 30 of
    a 78 ms temperature rule, and 20 ms of the critical alert reading only the GPUs past warning."""
    if any(n.serves(own) for own in OWN_LIMITS[key]):
        return None
    if key == "gpu_temp":
        return threshold_of(n.model, f"gpu_temp_{level}")
    ratio, limit = threshold_of(n.model, f"power_{level}_ratio"), threshold_of(n.model, "power_limit_watts")
    return lambda gpu: ratio(gpu) * limit(gpu)


def past(n: Names, key: str, level: str, series, threshold: str) -> str:
    """`series(matcher)` (this setup's, narrowed by a `gpu_model` matcher or "") past its `level`
    threshold of `key`: the model's figures where they are fixed, else `threshold` (PromQL)."""
    op = PAST_WARNING[key][1]
    figure = fixed_threshold(n, key, level)
    if figure is None:
        return f"{series('')} {op} {threshold}"
    return by_model(n.model.models_of(n.exporter), figure, lambda m, v: f"{series(m)} {op} {num(v)}")


def past_warning(ns: list[Names], key: str, level: str) -> str:
    """The GPUs past their warning threshold, and with `level` those of them past that one."""
    name, op, threshold = PAST_WARNING[key]
    served = [n for n in ns if n.serves(key)]
    if not served:
        return ""
    if not level:
        return name
    if all(fixed_threshold(n, key, level) is None for n in served):
        return f"{name} {op} {threshold.format(level)}"
    return union([past(n, key, level, lambda m, n=n: sel(name, n.job, m), sel(threshold.format(level), n.job))
                  for n in served])


def hw_throttle(n: Names) -> str | None:
    """1 per GPU with a hardware slowdown, thermal or power-brake clock event active, else 0.
    The throttled GPUs are found first and every other GPU gets its 0 from its presence: an
    arithmetic or reduction over every GPU's flags costs as much as reading them again. Where both
    forms are served, the bitmask: one series per GPU to read, where the flags are three."""
    key = throttle_key(n)
    if n.profile.name == NVIDIA_GPU_EXPORTER:
        flags = sel("", f"__name__=~{quote(NVIDIA_SMI_HW_THROTTLE)}", n.job)
        throttled = n.per_gpu(f"max without () ({flags} == 1)")
    elif key == "clock_event_reasons":
        throttled = f"0 * ({hw_bits_set(n.gpu('clock_event_reasons', where=f'>= {HW_LOWEST_BIT}'))}) + 1"
    elif key == "clock_event_active":
        flags = sel(n.clock_event_active, n.job, f"reason=~{quote('|'.join(HW_THROTTLE_REASONS))}")
        throttled = f"max without (reason, {n.dropped}) ({flags} == 1)"
    else:
        return None
    return f"{throttled}\nor\n0 * {n.present()}"


def throttle_key(n: Names) -> str | None:
    """The clock-event series the throttle rules read: the bitmask where served, else the flags."""
    return next((k for k in ("clock_event_reasons", "clock_event_active") if n.serves(k)), None)


# The hardware reasons' bits are 3 (hw_slowdown), 6 (hw_thermal) and 7 (hw_power_brake). Bits 3-7
# of the mask as a number b: a hardware bit is set when b is odd or at least 8, so when
# min(b, 7.5) is not even. One reading, where testing each bit reads the mask once per bit.
HW_LOWEST_BIT = CLOCK_EVENT_BITS["hw_slowdown"]


def hw_bits_set(mask: str) -> str:
    """The series of `mask` (clock-event bitmasks) with a hardware reason's bit set."""
    return f"clamp_max(floor({mask} / {HW_LOWEST_BIT}) % 32, 7.5) % 2 > 0"


def read_keys(n: Names, served: list[str]) -> list[str]:
    """Of a signal's served keys, those a GPU serving the signal has: the one form of the clock
    events the rules read; the first of NVLink's error counters (NVML and DCGM read the four
    together, for every link); else every one (row remapping and page retirement are each a GPU
    generation's own)."""
    if set(served) <= {"clock_event_active", "clock_event_reasons"}:
        return [throttle_key(n)]
    return served[:1] if set(served) <= {key for key, _ in NVLINK_ERROR_KINDS} else served


NVLINK_ERROR_KINDS = (("nvlink_crc_flit_errors", "crc_flit"), ("nvlink_crc_data_errors", "crc_data"),
                      ("nvlink_replay_errors", "replay"), ("nvlink_recovery_errors", "recovery"))


def zscore(series: str, floor: float) -> str:
    """Standard deviations of a recorded per-GPU series from its own last hour; `floor`, the
    least deviation divided by, keeps a steady GPU's sensor noise from turning into huge scores."""
    return f"({series} - avg_over_time({series}[1h]))\n/ clamp_min(stddev_over_time({series}[1h]), {num(floor)})"


def seconds_to_critical(temperature: str, critical: str) -> str:
    """Seconds until the temperature reaches the critical threshold at the last 10 minutes' rate
    of rise; nothing while the GPU cools."""
    return f"clamp_min(\n  ({critical} - {temperature})\n  / (deriv({temperature}[10m]) > 0),\n  0\n)"
