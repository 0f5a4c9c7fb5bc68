"""promtool unit tests generated from the spec: every alert, per GPU model where thresholds vary.

Each alert gets a case that must fire, with its exact labels and annotations, and a case just
below its threshold (or before its `for` elapses) that must not. Inputs are sampled every 15s
like a real scrape; counter inputs ramp linearly so increase() is exact on Prometheus 2 and 3.
Cases pass whatever order promtool evaluates the rule groups in (see chain_lengths).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass, field

from gpuobs.alerts import BLIND_ALERT
from gpuobs.catalog import NVIDIA_GPU_EXPORTER
from gpuobs.generators import efficiency_tests
from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import (
    EVALUATION_ORDER,
    FLEET_RULES,
    GLOBAL_INVENTORY,
    NVLINK_ERROR_KINDS,
    PREDICTION_NEAR_CELSIUS,
    XID_WINDOW,
    Names,
    active_alerts,
    alert_labels,
    blind_fill,
    blind_rules,
    expected_annotations,
    expected_gpus,
    global_inventory_rules,
    global_rule_files,
    inventory_labels,
    rule_files,
)
from gpuobs.generators.rules import generate as rule_documents
from gpuobs.gpus import GpuModel
from gpuobs.health import lowerable
from gpuobs.health import score as health_score
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num, quote
from gpuobs.spec.schema import seconds
from gpuobs.thresholds import Thresholds

STEP = 15  # seconds between samples and between rule evaluations
BASELINE = 60  # counters stay flat this long before a ramp starts


@dataclass
class Case:
    """One promtool test group: input series and the alerts expected at given times."""

    name: str
    series: list[tuple[str, dict, str]] = field(default_factory=list)  # metric, labels, values
    checks: list[tuple[int, str, list[tuple[dict, float]]]] = field(default_factory=list)

    def add(self, metric: str, labels: dict, values: str) -> Case:
        self.series.append((metric, labels, values))
        return self


def hold_of(alert: Alert) -> int:
    """`for` rounded up to the evaluation grid: promtool checks alerts only at evaluation steps."""
    return math.ceil(seconds(alert.for_) / STEP) * STEP


_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def chain_lengths(groups: list[dict]) -> dict[str, int]:
    """{alert: groups in the longest chain of rules feeding it, its own included}. A rule reading a
    series another group records sees this evaluation's value only where promtool evaluates that
    group first; in any other order it sees the last one, so each group along the chain may add a
    step before the alert sees a fault (rules of one group run in order)."""
    writers: dict[str, list[tuple[int, int]]] = {}
    for g, group in enumerate(groups):
        for r, rule in enumerate(group["rules"]):
            if "record" in rule:
                writers.setdefault(rule["record"], []).append((g, r))

    @functools.cache
    def length(g: int, r: int) -> int:
        read = set(_NAME.findall(groups[g]["rules"][r]["expr"])) & writers.keys()
        return max([length(*w) + (w[0] != g or w[1] > r) for name in read for w in writers[name]], default=1)

    chains: dict[str, int] = {}
    for g, group in enumerate(groups):
        for r, rule in enumerate(group["rules"]):
            if "alert" in rule:
                chains[rule["alert"]] = max(chains.get(rule["alert"], 1), length(g, r))
    return chains


def flat(value: float, seconds: int) -> str:
    return f"{num(value)}x{seconds // STEP}"


def held(value: float | str, seconds: int) -> str:
    """A value held flat for `seconds`, or a series' values as given."""
    return value if isinstance(value, str) else flat(value, seconds)


def ramp_after_baseline(step: float, seconds: int) -> str:
    """0 for BASELINE seconds, then +step per sample until `seconds`."""
    return f"0x{BASELINE // STEP - 1} 0+{num(step)}x{(seconds - BASELINE) // STEP}"


def series_text(metric: str, labels: dict) -> str:
    return metric + "{" + ", ".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"


class Builder:
    def __init__(self, model: FleetModel):
        self.model = model
        self.names = {e.job: Names(model, e) for e in model.exporters}
        self.n = self.names[model.exporters[0].job]
        self.chains = chain_lengths(fleet_wide_groups(model))

    def due(self, alert: Alert) -> int:
        """When a case expects the alert firing: `for` on the evaluation grid, then a step per group
        in the chain feeding the alert (its own included: the step after `for` elapses)."""
        return hold_of(alert) + self.chains[alert.name] * STEP

    # -- the GPU under test -------------------------------------------------------------
    def host_of(self, gpu: GpuModel) -> Host:
        """A host of the setup under test with this model (any host with it, for recording tests)."""
        hosts = [h for h in self.model.hosts if h.gpu is gpu]
        return next((h for h in hosts if h.exporter is self.n.exporter), hosts[0])

    def use(self, host: Host) -> Names:
        self.n = self.names[host.exporter.job]
        return self.n

    def gpu_labels(self, host: Host, index: int = 0) -> dict:
        labels = self._up_labels(host)
        profile = host.exporter.profile
        host_id = _stable_id(host.name)
        uuid = f"GPU-{host_id[:8]}-{index:04x}-4000-8000-{host_id[8:]}"
        values = {"gpu": str(index), "uuid": uuid, "pci_bus_id": f"00000000:{0x07 + index * 8 % 256:02X}:00.0",
                  "device": f"nvidia{index}", "model_name": host.gpu.nvml_name, "hostname": host.name}
        labels.update({profile.label(k): v for k, v in values.items() if profile.has_label(k)})
        return labels

    def value(self, key: str, value: float) -> float:
        """An input value in the exporter's own unit."""
        return value * self.n.profile.scale.get(key, 1)

    def presence(self, labels: dict) -> list[tuple[str, dict, float]]:
        """The input that makes a GPU present (gpu:present:bool) on the setup under test."""
        key = self.n.presence_key
        return [(getattr(self.n, key), labels, 1 if key == "gpu_up" else self.value(key, 1024))]

    def expect_labels(self, labels: dict) -> dict:
        """A GPU's labels after the rules: nvidia_gpu_exporter's GPUs gain `gpu`, from their UUID."""
        uuid = self.n.label("uuid")
        if not self.n.profile.has_label("gpu") and uuid in labels:
            return {**labels, "gpu": labels[uuid]}
        return labels

    def expect(self, alert: Alert, labels: dict, value: float, extra: dict | None = None,
               fill: dict | None = None) -> tuple[dict, float, dict | None]:
        full = {**self.expect_labels(labels), **(extra or {}), **alert_labels(self.model, alert)}
        return full, value, fill

    # -- cases per alert ----------------------------------------------------------------
    def cases(self) -> list[Case]:
        cases: list[Case] = []
        for alert in active_alerts(self.model):
            if alert.name == BLIND_ALERT:
                cases += self._blind(alert)
                continue
            builder = getattr(self, f"_{alert.name}", None)
            if builder is None and alert.definition.xid_codes:
                builder = self._xid
            if alert.definition.scope == "host" and alert.name != "GPUExporterStale":
                self.use(self.model.hosts[0])
                cases += builder(alert, None, None)
                continue
            thresholds = dict(self.model.thresholds)
            for n in self.names.values():
                self.n = n
                if not all(any(n.serves(k) for k in signal) for signal in alert.definition.needs):
                    continue
                models = [g for g in self.model.models_of(n.exporter) if alert.definition.concerns(g)]
                cases += _merged([builder(alert, gpu, thresholds[gpu])
                                  for gpu in (models if _varies_by_model(alert.name) else models[:1])])
        return cases

    def _blind(self, alert) -> list[Case]:
        """One case per setup (and GPU model where alerts concern only some models): a GPU without
        each signal the setup serves (every other signal present) raises GPUAlertBlind for exactly
        the alerts that signal blinds; a GPU with every signal raises only the never-served ones."""
        cases = []
        due = self.due(alert)
        by_host: dict = {}
        for blinded, exporter, missing, _expr in blind_rules(self.model):
            models = [g for g in self.model.models_of(exporter) if blinded.definition.concerns(g)]
            host = next(h for h in self.model.hosts_of(exporter) if h.gpu is models[0])
            by_host.setdefault(host.name, (host, []))[1].append((blinded, missing))
        for host, rules in by_host.values():
            n = self.use(host)
            signals = {n.profile.metric(k) for a in self.model.alerts for s in a.definition.needs for k in s
                       if n.serves(k)}
            lacking = list(dict.fromkeys(m for _, m in rules if signals & set(m))) + [()]
            case = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: a GPU without each signal, one with all")
            expected = []
            for index, missing in enumerate(lacking):
                labels = self.gpu_labels(host, index)
                given = signals - set(missing)
                for metric, lbls, v in self.presence(labels):
                    case.add(metric, lbls, flat(v, due))
                    given.discard(metric)
                for metric in sorted(given):
                    case.add(metric, labels, flat(0, due))
                # Every rule of the setup that concerns this model, also those tested on another host.
                expected += [self.expect(alert, labels, 1, {"blind_alert": b.name, "missing": " or ".join(m)},
                                         blind_fill(self.model, b, m))
                             for b, e, m, _ in blind_rules(self.model)
                             if e is n.exporter and b.definition.concerns(host.gpu)
                             and not (signals - set(missing)) & set(m)]
            case.checks.append((due, alert.name, expected))
            quiet = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: no GPU, quiet")
            quiet.add("up", self._up_labels(host), flat(1, due))
            quiet.checks.append((due, alert.name, []))
            cases += [case, quiet]
        return cases

    def _gauge_alert(self, alert, name, labels, inputs_fire, inputs_quiet, value, extra=None,
                     quiet_name="below threshold"):
        """Fire case (checked before and after `for`) and a quiet case, for gauge conditions; an
        input is a value held flat, or the text of its values."""
        hold, due = hold_of(alert), self.due(alert)
        fire = Case(f"{alert.name} {name}: fires")
        for metric, lbls, v in inputs_fire:
            fire.add(metric, lbls, held(v, due))
        if hold >= 2 * STEP:
            fire.checks.append((hold - STEP, alert.name, []))
        fire.checks.append((due, alert.name, [self.expect(alert, labels, value, extra)]))
        quiet = Case(f"{alert.name} {name}: {quiet_name}, quiet")
        for metric, lbls, v in inputs_quiet:
            quiet.add(metric, lbls, held(v, due))
        quiet.checks.append((due, alert.name, []))
        return [fire, quiet]

    def _counter_alert(self, alert, name, metric, labels, threshold, extra_series=()):
        """Linear ramps: one well above the threshold (must fire), one at half of it (must not)."""
        end = self._counter_end(alert)
        window_samples = 300 // STEP
        fire_step = max(1, math.ceil((threshold + 1) / window_samples * 2))
        fire = Case(f"{alert.name} {name}: fires")
        fire.add(metric, labels, ramp_after_baseline(fire_step, end + STEP))
        quiet = Case(f"{alert.name} {name}: half the threshold, quiet")
        quiet.add(metric, labels, ramp_after_baseline(threshold / 2 / window_samples, end + STEP))
        for m, lbls, v in extra_series:
            fire.add(m, lbls, v)
            quiet.add(m, lbls, v)
        fire.checks.append((end, alert.name, [self.expect(alert, labels, fire_step * window_samples)]))
        quiet.checks.append((end, alert.name, []))
        return [fire, quiet]

    def _counter_end(self, alert) -> int:
        """When counter cases check: a full 5-minute window of the ramp, then `for`, with room."""
        return BASELINE + 300 + self.due(alert) + 3 * STEP

    def _thermal(self, alert, gpu, t, critical: bool):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        cases = []
        level = "critical" if critical else "warning"
        fallback = t.gpu_temp_critical if critical else t.gpu_temp_warning
        cases += self._gauge_alert(alert, f"{n.exporter.job} {gpu.key} {level} figure {num(fallback)} C", labels,
                                   [(n.gpu_temp, labels, fallback)], [(n.gpu_temp, labels, fallback - 1)], fallback,
                                   quiet_name=f"at {num(fallback - 1)} C")
        if n.serves("gpu_max_op_temp"):
            cases += self._own_limit(alert, gpu, t, critical, labels)
        if n.serves("gpu_temp_margin"):
            cases += self._margin(alert, gpu, t, critical, labels)
        return cases

    def _own_limit(self, alert, gpu, t, critical, labels):
        n = self.n
        level = "critical" if critical else "warning"
        max_op = 90
        hot = max_op if critical else max_op - t.gpu_temp_max_op_offset_warning
        return self._gauge_alert(
            alert, f"{n.exporter.job} {gpu.key} {level} from reported max operating temperature", labels,
            [(n.gpu_temp, labels, hot), (n.gpu_max_op_temp, labels, max_op)],
            [(n.gpu_temp, labels, hot - 1.5), (n.gpu_max_op_temp, labels, max_op)], hot)

    def _margin(self, alert, gpu, t, critical, labels):
        n = self.n
        level = "critical" if critical else "warning"
        margin = t.gpu_temp_margin_critical if critical else t.gpu_temp_margin_warning
        return self._gauge_alert(
            alert, f"{n.exporter.job} {gpu.key} {level} from T.Limit margin", labels,
            [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin)],
            [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin + 1)], 70)

    def _GPUThermalWarning(self, alert, gpu, t):
        return self._thermal(alert, gpu, t, critical=False)

    def _GPUThermalCritical(self, alert, gpu, t):
        return self._thermal(alert, gpu, t, critical=True)

    def _GPUThermalCriticalPredicted(self, alert, gpu, t):
        """Rising steadily, a GPU is predicted to cross its critical threshold for at most the
        horizon before it does: the alert fires on the way up where `for` fits in that time, else
        only for a GPU that levels off at its threshold."""
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        critical = t.gpu_temp_critical
        horizon = int(seconds(t.thermal_prediction_horizon)) / 60  # minutes, as the rule rounds it
        # Rising 1 C/min: after 5 minutes both predicted to cross and near enough to count.
        start = critical - min(horizon, PREDICTION_NEAR_CELSIUS) - 5
        end = 300 + self.due(alert) + STEP
        if start + end / 60 <= critical:
            fire = Case(f"{alert.name} {n.exporter.job} {gpu.key}: rising 1 C/min towards {num(critical)} C, fires")
            fire.add(n.gpu_temp, labels, f"{num(start)}+0.25x{end // STEP + 1}")
            fire.checks.append((end, alert.name, [self.expect(alert, labels, start + end / 60 + horizon)]))
        else:
            fire, end = self._levelling_off(alert, gpu, labels, critical)
        quiet = Case(f"{alert.name} {n.exporter.job} {gpu.key}: steady {num(start)} C, quiet")
        quiet.add(n.gpu_temp, labels, flat(start, end + STEP))
        quiet.checks.append((end, alert.name, []))
        warming = Case(f"{alert.name} {n.exporter.job} {gpu.key}: warming up steeply far below the threshold, quiet")
        warming.add(n.gpu_temp, labels, f"{num(critical - PREDICTION_NEAR_CELSIUS - 45)}+1x{end // STEP + 1}")
        warming.checks.append((end, alert.name, []))
        return [fire, quiet, warming]

    def _levelling_off(self, alert, gpu, labels, critical) -> tuple[Case, int]:
        """Rising 1 C/min to exactly the threshold, then held there: from then on the temperature
        is not past it and the line through the last 10 minutes reaches it within any horizon. It
        is checked once those 10 minutes are flat, where the prediction is the threshold itself."""
        n = self.n
        end = 300 + max(600, hold_of(alert)) + self.chains[alert.name] * STEP
        case = Case(f"{alert.name} {n.exporter.job} {gpu.key}: rising 1 C/min to {num(critical)} C and staying "
                    "there, fires")
        case.add(n.gpu_temp, labels, f"{num(critical - 5)}+0.25x19 {num(critical)}x{(end - 300) // STEP + 1}")
        case.checks.append((end, alert.name, [self.expect(alert, labels, critical)]))
        return case, end

    def _power(self, alert, gpu, t, ratio):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        cases = []
        own = next((k for k in ("enforced_power_limit", "power_limit") if n.serves(k)), None)
        limits = [(f"{n.exporter.job} {gpu.key} fallback limit {num(t.power_limit_watts)} W", t.power_limit_watts, [])]
        if own:
            limits.insert(0, (f"{n.exporter.job} {gpu.key} {own} 500 W", 500, [(getattr(n, own), labels, 500)]))
        for name, limit, limit_series in limits:
            at = ratio * limit
            cases += self._gauge_alert(alert, name, labels,
                                       [(n.power_usage, labels, at + 10)] + limit_series,
                                       [(n.power_usage, labels, at)] + limit_series, at + 10,
                                       quiet_name=f"at {at:g} W")
        return cases

    def _GPUPowerSpike(self, alert, gpu, t):
        return self._power(alert, gpu, t, t.power_warning_ratio)

    def _GPUPowerCritical(self, alert, gpu, t):
        return self._power(alert, gpu, t, t.power_critical_ratio)

    def _GPUEccCorrectableSpike(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        return self._counter_alert(alert, f"{self.n.exporter.job} {gpu.key}", self.n.ecc_sbe_volatile, labels,
                                   t.ecc_correctable_warning)

    def _GPUEccUncorrectable(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        return self._counter_alert(alert, f"{self.n.exporter.job} any model", self.n.ecc_dbe_volatile, labels, 0)

    def _GPUNVLinkErrors(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        if not gpu.nvlink_links:
            return []
        end = self._counter_end(alert) + STEP
        served = [getattr(n, key) for key, _ in NVLINK_ERROR_KINDS if n.serves(key)]
        steady = [(name, labels, flat(3, end)) for name in served[1:2]]
        return self._counter_alert(alert, f"{n.exporter.job} {gpu.key}", served[0], labels, t.nvlink_errors_warning,
                                   extra_series=steady)

    def _GPUPCIeReplayErrors(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        return self._counter_alert(alert, f"{self.n.exporter.job} {gpu.key}", self.n.pcie_replay, labels,
                                   t.pcie_replay_warning)

    def _GPUThrottling(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        what, throttled, unthrottled, quiet_name = self._hardware_slowdown(labels)
        return self._gauge_alert(alert, f"{self.n.exporter.job} {what}", labels, throttled, unthrottled, 1,
                                 quiet_name=quiet_name)

    def _hardware_slowdown(self, labels) -> tuple[str, list, list, str]:
        """(what is read, inputs with a hardware slowdown, inputs with only software clock events,
        what those are) in the setup's own series."""
        n = self.n
        if n.profile.name == NVIDIA_GPU_EXPORTER:
            reason = "nvidia_smi_clocks_event_reasons_{}".format
            return ("hw_thermal_slowdown",
                    [(reason("hw_thermal_slowdown"), labels, 1), (reason("hw_slowdown"), labels, 0)],
                    [(reason("hw_thermal_slowdown"), labels, 0), (reason("sw_power_cap"), labels, 1)],
                    "software power cap only")
        if n.serves("clock_event_active"):
            flag = lambda reason: {**labels, "reason": reason}  # noqa: E731
            return ("hw_thermal flag",
                    [(n.clock_event_active, flag("hw_thermal"), 1), (n.clock_event_active, flag("hw_slowdown"), 0)],
                    [(n.clock_event_active, flag("hw_thermal"), 0), (n.clock_event_active, flag("power_cap"), 1)],
                    "software power cap only")
        return ("clock events bitmask", [(n.clock_event_reasons, labels, 0x40 | 0x04)],
                [(n.clock_event_reasons, labels, 0x04 | 0x01)], "software power cap and idle bits only")

    def _GPUMemoryPressure(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        total = gpu.memory_mib
        # 64 MiB either side of the threshold, within the framebuffer.
        used = min(total, math.ceil(total * t.memory_used_warning_ratio) + 64)
        below = max(0, math.floor(total * t.memory_used_warning_ratio) - 64)
        mib = lambda v: self.value("fb_used", v)  # noqa: E731
        return self._gauge_alert(
            alert, f"{n.exporter.job} {gpu.key} {num(t.memory_used_warning_ratio * 100)}%", labels,
            [(n.fb_used, labels, mib(used)), (n.fb_free, labels, mib(total - used))],
            [(n.fb_used, labels, mib(below)), (n.fb_free, labels, mib(total - below))],
            100 * (used / (used + (total - used))))

    def _GPURowRemapFailure(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        metric = self.n.row_remap_failure
        return self._gauge_alert(alert, f"{self.n.exporter.job} flag", labels, [(metric, labels, 1)],
                                 [(metric, labels, 0)], 1)

    def _GPURowRemapPending(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        cases = []
        for key, what in (("row_remap_pending", "row remap pending"), ("retired_pending", "page retirement pending")):
            if n.serves(key):
                metric = getattr(n, key)
                cases += self._gauge_alert(alert, f"{n.exporter.job} {what}", labels, [(metric, labels, 1)],
                                           [(metric, labels, 0)], 1)
        return cases

    def _GPUHealthLow(self, alert, gpu, t):
        """The fewest components at 0 that take the score (their mean) below the threshold, the
        others at 1; and a GPU healthy in every component. The spec makes sure the GPU's exporter
        serves enough components (spec/alert_checks.py)."""
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        components = lowerable(n.profile, gpu)
        lowered = next(k for k in range(1, len(components) + 1) if health_score(k) < t.health_score_warning)
        sick, well = self._health_inputs(alert, gpu, t, labels)
        fire = [i for c in components[:lowered] for i in sick[c]] + [i for c in components[lowered:] for i in well[c]]
        quiet = [i for c in components for i in well[c]]
        return self._gauge_alert(alert, f"{n.exporter.job} {gpu.key} {', '.join(components[:lowered])} at 0", labels,
                                 self._with_limits(labels, fire), self._with_limits(labels, quiet),
                                 health_score(lowered), quiet_name="healthy")

    def _health_inputs(self, alert, gpu, t, labels) -> tuple[dict, dict]:
        """({component: inputs taking it to 0}, {component: inputs keeping it at 1}); the GPU's own
        limits, where served, are 90 C and 400 W (_with_limits)."""
        n = self.n
        critical = 90 if n.serves("gpu_max_op_temp") else t.gpu_temp_critical
        limit = 400 if n.serves("enforced_power_limit") else t.power_limit_watts
        mib = lambda v: self.value("fb_used", v)  # noqa: E731
        sick = {"thermal": [(n.gpu_temp, labels, critical + 5)],
                "power": [(n.power_usage, labels, t.power_critical_ratio * limit + 10)],
                "memory": [(n.fb_used, labels, mib(1000)), (n.fb_free, labels, 0)],
                "ecc": self._ecc_errors(alert, labels),
                "throttle": self._hardware_slowdown(labels)[1]}
        well = {"thermal": [(n.gpu_temp, labels, critical - 40)],
                "power": [(n.power_usage, labels, t.power_warning_ratio * limit / 2)],
                "memory": [(n.fb_used, labels, mib(100)), (n.fb_free, labels, mib(900))],
                "ecc": [], "throttle": []}
        return sick, well

    def _ecc_errors(self, alert, labels) -> list:
        """A double-bit error or a thousand single-bit ones within the hour, else a failed row remap."""
        n = self.n
        for key in ("ecc_dbe_volatile", "ecc_sbe_volatile"):
            if n.serves(key):
                return [(getattr(n, key), labels, f"0 1000x{self.due(alert) // STEP}")]
        return [(n.row_remap_failure, labels, 1)]

    def _with_limits(self, labels, inputs: list) -> list:
        """`inputs` with the GPU's own limits where the setup serves them, and the series that makes
        it present where `inputs` lack it."""
        n = self.n
        limits = [(getattr(n, key), labels, value) for key, value in (("enforced_power_limit", 400),
                                                                      ("gpu_max_op_temp", 90)) if n.serves(key)]
        given = {metric for metric, _, _ in inputs}
        return limits + inputs + [p for p in self.presence(labels) if p[0] not in given]

    def _xid(self, alert, gpu, t):
        """Every code of the tier on its own GPU, through each XID series the setup serves."""
        n = self.n
        host = self.host_of(gpu)
        codes = [str(c) for c in alert.definition.xid_codes]
        other = "13"  # graphics engine exception: an application fault, not a GPU fault
        end = self.due(alert) + 9 * STEP
        # The counters hold an XID for the rule's window: a longer `for` needs it to recur (each scrape here).
        once = end <= seconds(XID_WINDOW)
        rising = f"1x3 2x{end // STEP}" if once else f"1+1x{end // STEP}"
        appearing = f"_x3 1x{end // STEP}" if once else f"_x3 1+1x{end // STEP}"
        tier = f"{alert.name} {n.exporter.job} XID {', '.join(codes)}"
        # Each code on a GPU of its own: the last-value gauge holds one code per GPU.
        gpus = [self.gpu_labels(host, i) for i in range(len(codes))]
        cases = []

        def fires(name: str, metric: str, values, value_of) -> None:
            case = Case(f"{tier} {name}: fires")
            for labels, code in zip(gpus, codes, strict=True):
                case.add(metric, {**labels, **({"xid": code} if metric != n.xid_last else {})}, values(code))
            case.checks.append((end, alert.name, [self.expect(alert, g, value_of(c), {"xid": c})
                                                  for g, c in zip(gpus, codes, strict=True)]))
            cases.append(case)

        def quiet(name: str, metric: str, labels: dict, values: str) -> None:
            case = Case(f"{alert.name} {n.exporter.job} XID {other} {name}: quiet")
            case.add(metric, labels, values)
            case.checks.append((end, alert.name, []))
            cases.append(case)

        if n.serves("xid_errors"):
            # The value, an increase or a count, shows in no annotation.
            fires("counters rise", n.xid_errors, lambda c: rising, lambda c: 1)
            fires("counters appear at 1", n.xid_errors, lambda c: appearing, lambda c: 1)
            quiet("counter only", n.xid_errors, {**gpus[0], "xid": other}, f"1x3 2x{end // STEP}")
        if n.serves("xid_window_count"):
            window = {"window_size_in_ms": "300000"}
            fires("in dcgm-exporter's windowed count", n.xid_window_count,
                  lambda c: f"_x3 1x{end // STEP}", lambda c: 1)
            cases[-1].series = [(m, {**lbls, **window}, v) for m, lbls, v in cases[-1].series]
            quiet("in the windowed count", n.xid_window_count, {**gpus[0], "xid": other, **window},
                  f"_x3 1x{end // STEP}")
        if n.serves("xid_last"):
            fires("in the last-value gauge", n.xid_last, lambda c: flat(int(c), end + STEP), int)
            quiet("in the last-value gauge", n.xid_last, gpus[0], flat(int(other), end + STEP))
        return cases

    def _up_series(self, case: Case, hosts, down: Host | None, seconds: int):
        for host in hosts:
            case.add("up", self._up_labels(host), flat(0 if host is down else 1, seconds))

    def _up_labels(self, host: Host) -> dict:
        return {"job": host.exporter.job, "instance": host.exporter_target, **target_labels(self.model, host)}

    def _GPUMissing(self, alert, gpu, t):
        host = self.model.hosts[0]
        hold, due = hold_of(alert), self.due(alert)
        fire = Case(f"{alert.name} {host.name}: one of {host.gpu_count} GPUs gone, fires")
        quiet = Case(f"{alert.name} {host.name}: all {host.gpu_count} GPUs report, quiet")
        # Only this host is scraped: any other host with an up exporter and no GPUs would alert too.
        for case, reporting in ((fire, host.gpu_count - 1), (quiet, host.gpu_count)):
            self._up_series(case, [host], None, due)
            for index in range(reporting):
                for metric, labels, v in self.presence(self.gpu_labels(host, index)):
                    case.add(metric, labels, flat(v, due))
        if hold >= 2 * STEP:
            fire.checks.append((hold - STEP, alert.name, []))
        fire.checks.append((due, alert.name, [self.expect(alert, inventory_labels(self.model, host), 1)]))
        quiet.checks.append((due, alert.name, []))
        if not self.n.serves("gpu_up"):
            return [fire, quiet]
        # The exporter keeps a lost GPU visible as gpu_up 0: the alert names that GPU, and the
        # host's shortfall does not alert a second time.
        lost_index = host.gpu_count - 1
        lost = Case(f"{alert.name} {host.name}: GPU {lost_index} reported lost, fires for that GPU")
        self._up_series(lost, [host], None, due)
        for index in range(host.gpu_count):
            gone = index == lost_index
            lost.add(self.n.gpu_up, self.gpu_labels(host, index), flat(0 if gone else 1, due))
        lost.checks.append((due, alert.name, [
            self.expect(alert, self.gpu_labels(host, lost_index), 1, {"gpu_model": host.gpu.key})]))
        return [fire, quiet, lost]

    def _GPUExporterStale(self, alert, gpu, t):
        """Collections stop at time 0 while scrapes go on; promtool's clock starts at 0, so the
        last-success timestamp is the age of the readings."""
        host = next(h for h in self.model.hosts if h.exporter is self.n.exporter)
        stale = self.model.prometheus.exporter_stale_seconds
        stale_from = (stale // STEP + 1) * STEP
        end = stale_from + self.due(alert)
        labels = self._up_labels(host)
        if not self.n.serves("exporter_last_success"):
            return self._frozen_energy(alert, host, stale)
        fire = Case(f"{alert.name} {host.name}: collections stopped, fires")
        fire.add(self.n.exporter_last_success, labels, flat(0, end + STEP))
        fire.checks.append((stale_from + hold_of(alert) - STEP, alert.name, []))
        fire.checks.append((end, alert.name, [self.expect(alert, labels, end)]))
        quiet = Case(f"{alert.name} {host.name}: collections keep up, quiet")
        quiet.add(self.n.exporter_last_success, labels, f"0+{STEP}x{end // STEP + 1}")
        quiet.checks.append((end, alert.name, []))
        return [fire, quiet]

    def _frozen_energy(self, alert, host, stale):
        """Without a last-collection timestamp: every GPU's energy counter stops advancing."""
        n = self.n
        labels = self.gpu_labels(host)
        start = (stale // STEP + 2) * STEP  # a full window of samples before anything can fire
        end = start + stale + self.due(alert) + STEP
        frozen_at = start
        fire = Case(f"{alert.name} {n.exporter.job} {host.name}: energy counter frozen, fires")
        steps = frozen_at // STEP
        fire.add(n.total_energy, labels, f"0+1000x{steps} {1000 * steps}x{(end - frozen_at) // STEP}")
        fire.checks.append((end, alert.name, [self.expect(alert, self._up_labels(host), stale)]))
        quiet = Case(f"{alert.name} {n.exporter.job} {host.name}: energy counter advancing, quiet")
        quiet.add(n.total_energy, labels, f"0+1000x{end // STEP + 1}")
        quiet.checks.append((end, alert.name, []))
        return [fire, quiet]

    def _GPUExporterDown(self, alert, gpu, t):
        host = self.model.hosts[0]
        hold, due = hold_of(alert), self.due(alert)
        others = [h for h in self.model.hosts if h is not host]
        down = Case(f"{alert.name} {host.name}: scrape fails, fires")
        self._up_series(down, self.model.hosts, host, due)
        absent = Case(f"{alert.name} {host.name}: no scrape target at all, fires")
        self._up_series(absent, others, None, due)
        quiet = Case(f"{alert.name}: every exporter up, quiet")
        self._up_series(quiet, self.model.hosts, None, due)
        if hold >= 2 * STEP:
            down.checks.append((hold - STEP, alert.name, []))
        down.checks.append((due, alert.name, [self.expect(alert, self._up_labels(host), 0)]))
        absent.checks.append((due, alert.name,
                              [self.expect(alert, inventory_labels(self.model, host), host.gpu_count)]))
        quiet.checks.append((due, alert.name, []))
        return [down, absent, quiet]


def _merged(per_model: list[list[Case]]) -> list[Case]:
    """Each model's cases side by side in one group (its GPUs sit on hosts of their own, so their
    series never meet): every model is still tested, in a fraction of promtool's time. Models whose
    cases differ in shape keep groups of their own."""
    by_shape: dict[tuple, list[list[Case]]] = {}
    for cases in per_model:
        by_shape.setdefault(tuple(_shape(c) for c in cases), []).append(cases)
    out = []
    for alike in by_shape.values():
        for group in zip(*alike, strict=True):
            merged = Case(" / ".join(dict.fromkeys(c.name for c in group)))
            for case in group:
                merged.series += case.series
            for i, (time, name, _) in enumerate(group[0].checks):
                merged.checks.append((time, name, [e for case in group for e in case.checks[i][2]]))
            out.append(merged)
    return out


def _shape(case: Case) -> tuple:
    return tuple((time, name) for time, name, _ in case.checks)


def _stable_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:20]


_MODEL_INDEPENDENT = {"GPUEccUncorrectable", "GPUThrottling", "GPURowRemapFailure", "GPURowRemapPending",
                      "GPUMissing", "GPUExporterDown", "GPUExporterStale", "GPUXidQuarantine", "GPUXidReset",
                      "GPUXidDrain"}


def _varies_by_model(alert_name: str) -> bool:
    return alert_name not in _MODEL_INDEPENDENT


def _test_group(model: FleetModel, case: Case) -> dict:
    by_name = {a.name: a for a in model.alerts}
    checks = []
    for eval_time, name, expected in case.checks:
        alert = by_name[name]
        checks.append({
            "eval_time": _duration_text(eval_time),
            "alertname": name,
            "exp_alerts": [{"exp_labels": labels,
                            "exp_annotations": expected_annotations(model, alert, labels, value, fill)}
                           for labels, value, fill in expected],
        })
    return {
        "name": case.name,
        "interval": f"{STEP}s",
        "input_series": [{"series": series_text(m, lbls), "values": v} for m, lbls, v in case.series],
        "alert_rule_test": checks,
    }


def _duration_text(seconds: int) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return (f"{minutes}m" if minutes else "") + (f"{rest}s" if rest or not minutes else "")


def _relative(paths) -> list[str]:
    return ["../" + path.removeprefix("prometheus/") for path in paths]


def _fleet_wide_paths(model: FleetModel) -> list[str]:
    """Every rule file but the global tier's inventory, which would record cluster:gpus_expected:count
    a second time: the alert and recording tests see the whole fleet as one Prometheus would."""
    return [path for path in rule_files(model) if path != GLOBAL_INVENTORY]


def fleet_wide_groups(model: FleetModel) -> list[dict]:
    """The rule groups of those files, as the alert and recording tests load them."""
    documents = rule_documents(model)
    return [g for path in _fleet_wide_paths(model) for g in documents[path]["groups"]]


def recording_tests(model: FleetModel) -> list[dict]:
    """Values of the recording rules for one healthy GPU per model, and the inventory."""
    b = Builder(model)
    n = b.n
    tests = []
    inventory = [{"labels": series_text(n.inventory_expected_gpus, inventory_labels(model, h)), "value": h.gpu_count}
                 for h in model.hosts]
    tests.append({"name": "inventory from the spec", "interval": f"{STEP}s", "input_series": [],
                  # 1m, not 0s: rule groups of different files have no order within one evaluation.
                  "promql_expr_test": [{"expr": n.inventory_expected_gpus, "eval_time": "1m",
                                        "exp_samples": inventory},
                                       {"expr": "fleet:gpus_expected:count", "eval_time": "1m",
                                        "exp_samples": [{"labels": "fleet:gpus_expected:count",
                                                         "value": sum(h.gpu_count for h in model.hosts)}]}]})
    for gpu, t in model.thresholds:
        tests.append(_recording_case(b, gpu, t))
    return tests + efficiency_tests.efficiency_tests(model, b)


def _recording_case(b: Builder, gpu: GpuModel, t: Thresholds) -> dict:
    host = next(h for h in b.model.hosts if h.gpu is gpu)
    n = b.use(host)
    labels = b.gpu_labels(host)
    out = b.expect_labels(labels)
    duration = 20 * 60
    critical = t.gpu_temp_critical
    # Healthy, and whole minutes below the critical threshold at 1 C/min (see seconds_to_critical).
    below = math.ceil(critical - min(60, t.gpu_temp_warning - 20))
    start = critical - below
    # Half the limit and a quarter of 4 GiB used, or half the warning levels where those are lower.
    power = t.power_limit_watts * min(0.5, t.power_warning_ratio / 2)
    used = 4096 * min(0.25, t.memory_used_warning_ratio / 2)
    free = 4096 - used
    samples = {key: values for key, values in (
        ("gpu_temp", f"{num(start)}+0.25x80"),  # rising 1 C/min
        ("power_usage", flat(power, duration)),
        ("gpu_util", flat(b.value("gpu_util", 50), duration)),
        ("fb_used", flat(b.value("fb_used", used), duration)),
        ("fb_free", flat(b.value("fb_free", free), duration)),
    ) if n.serves(key)}
    series = [{"series": series_text(getattr(n, k), labels), "values": v} for k, v in samples.items()]
    if n.serves("gpu_up"):
        series.append({"series": series_text(n.gpu_up, labels), "values": flat(1, duration)})
    eval_time = "10m"
    expectations = [("gpu:health_ecc:score", 1), ("gpu:health_throttle:score", 1)]
    if "power_usage" in samples:
        expectations += [
            ("gpu:power_limit:watts", t.power_limit_watts),
            ("gpu:power_warning_threshold:watts", t.power_warning_ratio * t.power_limit_watts),
            ("gpu:power_critical_threshold:watts", t.power_critical_ratio * t.power_limit_watts),
            ("gpu:power_usage:ratio_of_limit", power / t.power_limit_watts),
            ("round(gpu:power_usage:zscore_1h, 0.001)", 0),
        ]
    if "gpu_util" in samples:
        expectations.append(("gpu:utilization:ratio", 0.5))
    if "fb_used" in samples and "fb_free" in samples:
        expectations += [("gpu:framebuffer_used:ratio", 1 / (1 + free / used)), ("gpu:health_memory:score", 1)]
    if "gpu_temp" in samples:
        # Evaluated before the group recording the temperature, the rule reads it a step late: 15 s
        # more to go at 1 C/min. Both round to the same whole minute, 10 minutes into the rise.
        expectations += [("gpu:temperature_warning_threshold:celsius", t.gpu_temp_warning),
                         ("gpu:temperature_critical_threshold:celsius", critical),
                         ("round(gpu:temperature:seconds_to_critical, 60)", (below - 10) * 60)]
    host_by = {"cluster": host.cluster, n.host: host.name}
    # A recorded series keeps its name; an expression's result has none.
    tests = [{"expr": expr, "eval_time": eval_time,
              "exp_samples": [{"labels": series_text("" if "(" in expr else expr, out), "value": _num(value)}]}
             for expr, value in expectations]
    tests += [
        {"expr": "fleet:gpus:count", "eval_time": eval_time,
         "exp_samples": [{"labels": "fleet:gpus:count", "value": 1}]},
        {"expr": "fleet:gpus_healthy:count", "eval_time": eval_time,
         "exp_samples": [{"labels": "fleet:gpus_healthy:count", "value": 1}]},
    ]
    if "power_usage" in samples:
        tests.append({"expr": "host:gpu_power_watts:sum", "eval_time": eval_time,
                      "exp_samples": [{"labels": series_text("host:gpu_power_watts:sum", host_by),
                                       "value": _num(power)}]})
    return {"name": f"recording rules for a healthy {gpu.key} ({n.exporter.job})", "interval": f"{STEP}s",
            "input_series": series, "promql_expr_test": tests}


def _num(value: float):
    return int(value) if float(value).is_integer() else value


def fleet_tests(model: FleetModel) -> list[dict]:
    """The fleet rules on nothing but cluster-level series, shaped as the global tier federates them:
    one GPU missing and one alerting in the first cluster; then, with a global tier, that cluster's
    Prometheus unreachable: its GPUs still count as expected, from the global tier's inventory."""
    gpus = expected_gpus(model)
    # With a global tier, expected GPUs come from its own inventory, not from the clusters.
    own = {r["record"] for r in global_inventory_rules(model)} if model.global_tier is not None else set()
    first = next(iter(gpus))

    def series(clusters) -> tuple[list[dict], dict]:
        inputs, totals = [], {"reporting": 0, "alerting": 0, "utilization": 0.0, "power": 0}
        for cluster in clusters:
            reporting = gpus[cluster] - (cluster == first)
            alerting = int(cluster == first)
            utilization = 0.25 if cluster == first else 0.75
            values = {"cluster:gpus:count": reporting, "cluster:gpus_expected:count": gpus[cluster],
                      "cluster:gpus_alerting:count": alerting, "cluster:gpus_healthy:count": reporting - alerting,
                      "cluster:gpu_utilization:sum": utilization * reporting,
                      "cluster:gpu_utilization:count": reporting, "cluster:gpu_power_watts:sum": 100 * reporting}
            labels = {"cluster": cluster, "job": "federate"}
            inputs += [{"series": series_text(name, labels), "values": flat(value, 5 * 60)}
                       for name, value in values.items() if name not in own]
            totals["reporting"] += reporting
            totals["alerting"] += alerting
            totals["utilization"] += utilization * reporting
        totals["power"] = 100 * totals["reporting"]
        return inputs, totals

    def expect(totals: dict) -> list[dict]:
        values = {"fleet:gpus:count": totals["reporting"], "fleet:gpus_expected:count": sum(gpus.values()),
                  "fleet:gpus_alerting:count": totals["alerting"],
                  "fleet:gpus_healthy:count": totals["reporting"] - totals["alerting"],
                  "fleet:gpu_utilization:avg": totals["utilization"] / totals["reporting"],
                  "fleet:gpu_power_watts:sum": totals["power"]}
        return [{"expr": name, "eval_time": "1m", "exp_samples": [{"labels": name, "value": _num(value)}]}
                for name, value in values.items()]

    inputs, totals = series(gpus)
    tests = [{"name": f"fleet rules over the cluster-level series of {len(gpus)} clusters", "interval": f"{STEP}s",
              "input_series": inputs, "promql_expr_test": expect(totals)}]
    reachable = [c for c in gpus if c != first]
    if model.global_tier is not None and reachable:
        inputs, totals = series(reachable)
        tests.append({"name": f"cluster {first} unreachable: its GPUs are expected, none report",
                      "interval": f"{STEP}s", "input_series": inputs, "promql_expr_test": expect(totals)})
    return tests


def generate(model: FleetModel) -> dict[str, object]:
    # Groups in the order their series feed each other; the cases pass in any other order too
    # (promtool's own, without this list, is random): see chain_lengths.
    names = dict.fromkeys(g["name"] for g in fleet_wide_groups(model))
    order = sorted(names, key=EVALUATION_ORDER.index)
    evaluation = {"rule_files": _relative(_fleet_wide_paths(model)), "evaluation_interval": f"{STEP}s",
                  "group_eval_order": order}
    files = {
        "prometheus/tests/alerts.yml": {**evaluation,
                                        "tests": [_test_group(model, c) for c in Builder(model).cases()]},
        "prometheus/tests/recording.yml": {**evaluation, "tests": recording_tests(model)},
    }
    if model.per_cluster:
        fleet_files = _relative(global_rule_files(model) or [FLEET_RULES])
        files["prometheus/tests/fleet.yml"] = {"rule_files": fleet_files, "evaluation_interval": f"{STEP}s",
                                               "tests": fleet_tests(model)}
    return files
