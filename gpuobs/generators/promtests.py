"""promtool unit tests generated from the spec: every alert, per GPU model where thresholds vary.

Each alert gets a case that must fire, with its exact labels and annotations, and a case just
below its threshold (or before its `for` elapses) that must not. Inputs are sampled every 15s
like a real scrape; counter inputs ramp linearly so increase() is exact on Prometheus 2 and 3.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import (
    FLEET_RULES,
    GLOBAL_INVENTORY,
    GPU_EXPORTER_JOB,
    PREDICTION_NEAR_CELSIUS,
    Names,
    alert_labels,
    expected_annotations,
    expected_gpus,
    global_inventory_rules,
    global_rule_files,
    inventory_labels,
    rule_files,
)
from gpuobs.gpus import GpuModel
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num, quote
from gpuobs.spec.schema import seconds
from gpuobs.thresholds import Thresholds

STEP = 15  # seconds between samples and between rule evaluations
BASELINE = 300  # counters stay flat this long before a ramp starts


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


def flat(value: float, seconds: int) -> str:
    return f"{num(value)}x{seconds // STEP}"


def ramp_after_baseline(step: float, seconds: int) -> str:
    """0 for BASELINE seconds, then +step per sample until `seconds`."""
    return f"0x{BASELINE // STEP - 1} 0+{num(step)}x{(seconds - BASELINE) // STEP}"


def series_text(metric: str, labels: dict) -> str:
    return metric + "{" + ", ".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"


class Builder:
    def __init__(self, model: FleetModel):
        self.model = model
        self.n = Names(model)

    # -- the GPU under test -------------------------------------------------------------
    def host_of(self, gpu: GpuModel) -> Host:
        return next(h for h in self.model.hosts if h.gpu is gpu)

    def gpu_labels(self, host: Host, index: int = 0) -> dict:
        labels = self._up_labels(host)
        label = self.n.label
        host_id = _stable_id(host.name)
        labels.update({
            label("gpu"): str(index),
            label("uuid"): f"GPU-{host_id[:8]}-{index:04x}-4000-8000-{host_id[8:]}",
            label("pci_bus_id"): f"00000000:{0x07 + index * 8 % 256:02X}:00.0",
            label("device"): f"nvidia{index}",
            label("model_name"): host.gpu.nvml_name,
            label("hostname"): host.name,
        })
        return labels

    def expect(self, alert: Alert, labels: dict, value: float, extra: dict | None = None) -> tuple[dict, float]:
        full = {**labels, **(extra or {}), **alert_labels(self.model, alert)}
        return full, value

    # -- cases per alert ----------------------------------------------------------------
    def cases(self) -> list[Case]:
        cases: list[Case] = []
        for alert in self.model.alerts:
            builder = getattr(self, f"_{alert.name}", None)
            if builder is None and alert.definition.xid_codes:
                builder = self._xid
            for gpu, thresholds in self.model.thresholds if alert.definition.scope == "gpu" else [(None, None)]:
                cases += builder(alert, gpu, thresholds)
                if not _varies_by_model(alert.name):
                    break
        return cases

    def _gauge_alert(self, alert, name, labels, inputs_fire, inputs_quiet, value, extra=None,
                     quiet_name="below threshold"):
        """Fire case (checked before and after `for`) and a quiet case, for gauge conditions."""
        hold = hold_of(alert)
        duration = hold + 10 * STEP
        fire = Case(f"{alert.name} {name}: fires")
        for metric, lbls, v in inputs_fire:
            fire.add(metric, lbls, flat(v, duration))
        if hold >= 2 * STEP:
            fire.checks.append((hold - STEP, alert.name, []))
        fire.checks.append((hold + STEP, alert.name, [self.expect(alert, labels, value, extra)]))
        quiet = Case(f"{alert.name} {name}: {quiet_name}, quiet")
        for metric, lbls, v in inputs_quiet:
            quiet.add(metric, lbls, flat(v, duration))
        quiet.checks.append((hold + STEP, alert.name, []))
        return [fire, quiet]

    def _counter_alert(self, alert, name, metric, labels, threshold, extra_series=()):
        """Linear ramps: one well above the threshold (must fire), one at half of it (must not)."""
        hold = hold_of(alert)
        end = BASELINE + 300 + hold + 4 * STEP
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

    def _thermal(self, alert, gpu, t, critical: bool):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        cases = []
        level = "critical" if critical else "warning"
        fallback = t.gpu_temp_critical if critical else t.gpu_temp_warning
        if fallback is not None:
            hot = fallback + 1 if critical else fallback
            at = fallback if critical else fallback - 1
            cases += self._gauge_alert(alert, f"{gpu.key} {level} fallback {num(fallback)} C", labels,
                                       [(n.gpu_temp, labels, hot)], [(n.gpu_temp, labels, at)], hot,
                                       quiet_name=f"at {num(at)} C")
        max_op = 90
        limit = max_op if critical else max_op - t.gpu_temp_max_op_offset_warning
        hot = limit + 1 if critical else limit
        cases += self._gauge_alert(
            alert, f"{gpu.key} {level} from reported max operating temperature", labels,
            [(n.gpu_temp, labels, hot), (n.gpu_max_op_temp, labels, max_op)],
            [(n.gpu_temp, labels, hot - 1.5), (n.gpu_max_op_temp, labels, max_op)], hot)
        margin = t.gpu_temp_margin_critical if critical else t.gpu_temp_margin_warning
        cases += self._gauge_alert(
            alert, f"{gpu.key} {level} from T.Limit margin", labels,
            [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin)],
            [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin + 1)], 70)
        return cases

    def _GPUThermalWarning(self, alert, gpu, t):
        return self._thermal(alert, gpu, t, critical=False)

    def _GPUThermalCritical(self, alert, gpu, t):
        return self._thermal(alert, gpu, t, critical=True)

    def _GPUThermalCriticalPredicted(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        critical = t.gpu_temp_critical if t.gpu_temp_critical is not None else 90
        extra = [] if t.gpu_temp_critical is not None else [(n.gpu_max_op_temp, labels, critical)]
        horizon = seconds(t.thermal_prediction_horizon) / 60
        hold = hold_of(alert)
        # Rising 1 C/min: after 5 minutes both predicted to cross and near enough to count.
        start = critical - min(horizon, PREDICTION_NEAR_CELSIUS) - 5
        end = 300 + hold + 2 * STEP
        fire = Case(f"{alert.name} {gpu.key}: rising 1 C/min towards {num(critical)} C, fires")
        fire.add(n.gpu_temp, labels, f"{num(start)}+0.25x{end // STEP + 1}")
        quiet = Case(f"{alert.name} {gpu.key}: steady {num(start)} C, quiet")
        quiet.add(n.gpu_temp, labels, flat(start, end + STEP))
        warming = Case(f"{alert.name} {gpu.key}: warming up steeply far below the threshold, quiet")
        warming.add(n.gpu_temp, labels, f"{num(critical - PREDICTION_NEAR_CELSIUS - 45)}+1x{end // STEP + 1}")
        warming.checks.append((end, alert.name, []))
        for metric, lbls, v in extra:
            fire.add(metric, lbls, flat(v, end + STEP))
            quiet.add(metric, lbls, flat(v, end + STEP))
        predicted = start + end / 60 + horizon
        if start + end / 60 > critical:
            return []  # the spec's horizon is shorter than `for`: nothing to predict before it is critical
        fire.checks.append((end, alert.name, [self.expect(alert, labels, predicted)]))
        quiet.checks.append((end, alert.name, []))
        for metric, lbls, v in extra:
            warming.add(metric, lbls, flat(v, end + STEP))
        return [fire, quiet, warming]

    def _power(self, alert, gpu, t, ratio):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        cases = []
        for name, limit, limit_series in (
                (f"{gpu.key} enforced limit 500 W", 500, [(n.enforced_power_limit, labels, 500)]),
                (f"{gpu.key} fallback limit {num(t.power_limit_watts)} W", t.power_limit_watts, [])):
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
        return self._counter_alert(alert, gpu.key, self.n.ecc_sbe_volatile, labels,
                                   t.ecc_correctable_warning)

    def _GPUEccUncorrectable(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        return self._counter_alert(alert, "any model", self.n.ecc_dbe_volatile, labels, 0)

    def _GPUNVLinkErrors(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        end = BASELINE + 300 + hold_of(alert) + 5 * STEP
        steady = [(n.nvlink_replay_errors, labels, flat(3, end))]
        return self._counter_alert(alert, gpu.key, n.nvlink_crc_flit_errors, labels, t.nvlink_errors_warning,
                                   extra_series=steady)

    def _GPUPCIeReplayErrors(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        return self._counter_alert(alert, gpu.key, self.n.pcie_replay, labels, t.pcie_replay_warning)

    def _GPUThrottling(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        flag = lambda reason: {**labels, "reason": reason}  # noqa: E731
        return self._gauge_alert(
            alert, "hw_thermal flag", labels,
            [(n.clock_event_active, flag("hw_thermal"), 1), (n.clock_event_active, flag("hw_slowdown"), 0)],
            [(n.clock_event_active, flag("hw_thermal"), 0), (n.clock_event_active, flag("power_cap"), 1)],
            1, quiet_name="software power cap only") + self._gauge_alert(
            alert, "bitmask from dcgm-exporter", labels,
            [(n.clock_event_reasons, labels, 0x40 | 0x04)], [(n.clock_event_reasons, labels, 0x04 | 0x01)], 1,
            quiet_name="software power cap and idle bits only")

    def _GPUMemoryPressure(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        total = gpu.memory_mib
        used = math.ceil(total * t.memory_used_warning_ratio) + 64
        below = math.floor(total * t.memory_used_warning_ratio) - 64
        return self._gauge_alert(
            alert, f"{gpu.key} {num(t.memory_used_warning_ratio * 100)}%", labels,
            [(n.fb_used, labels, used), (n.fb_free, labels, total - used)],
            [(n.fb_used, labels, below), (n.fb_free, labels, total - below)],
            100 * (used / (used + (total - used))))

    def _GPURowRemapFailure(self, alert, gpu, t):
        labels = self.gpu_labels(self.host_of(gpu))
        metric = self.n.row_remap_failure
        return self._gauge_alert(alert, "flag", labels, [(metric, labels, 1)], [(metric, labels, 0)], 1)

    def _GPURowRemapPending(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        return (self._gauge_alert(alert, "row remap pending", labels, [(n.row_remap_pending, labels, 1)],
                                  [(n.row_remap_pending, labels, 0)], 1)
                + self._gauge_alert(alert, "page retirement pending (Volta)", labels,
                                    [(n.retired_pending, labels, 1)], [(n.retired_pending, labels, 0)], 1))

    def _GPUHealthLow(self, alert, gpu, t):
        n = self.n
        labels = self.gpu_labels(self.host_of(gpu))
        critical_watts = t.power_critical_ratio * 400
        common = [(n.gpu_max_op_temp, labels, 90), (n.enforced_power_limit, labels, 400)]
        sick = [(n.gpu_temp, labels, 95), (n.power_usage, labels, critical_watts + 10),
                (n.fb_used, labels, 1000), (n.fb_free, labels, 0)]
        well = [(n.gpu_temp, labels, 50), (n.power_usage, labels, 100),
                (n.fb_used, labels, 100), (n.fb_free, labels, 900)]
        # thermal, power and memory components at 0, ECC and throttling at 1: (0+0+0+1+1)/5
        score = (0 + 0 + 0 + 1 + 1) / 5
        if score >= t.health_score_warning:
            return []
        return self._gauge_alert(alert, f"{gpu.key} hot, over power, memory full", labels, common + sick,
                                 common + well, score, quiet_name="healthy")

    def _xid(self, alert, gpu, t):
        """Every code of the tier on its own GPU, through our counter and dcgm's last-value gauge."""
        n = self.n
        host = self.host_of(gpu)
        codes = [str(c) for c in alert.definition.xid_codes]
        other = "13"  # graphics engine exception: an application fault, not a GPU fault
        end = 10 * STEP
        gpus = [self.gpu_labels(host, i % host.gpu_count) for i in range(len(codes))]
        rising = Case(f"{alert.name} XID {', '.join(codes)} counters rise: fires")
        appearing = Case(f"{alert.name} XID {', '.join(codes)} counters appear at 1: fires")
        gauge = Case(f"{alert.name} XID {', '.join(codes)} in dcgm-exporter's last-value gauge: fires")
        for labels, code in zip(gpus, codes, strict=True):
            rising.add(n.xid_errors, {**labels, "xid": code}, f"1x3 2x{end // STEP}")
            appearing.add(n.xid_errors, {**labels, "xid": code}, f"_x3 1x{end // STEP}")
        # The gauge holds one code per GPU, so each code needs a GPU of its own.
        gauge_gpus = [self.gpu_labels(host, i) for i in range(len(codes))]
        for labels, code in zip(gauge_gpus, codes, strict=True):
            gauge.add(n.xid_last, labels, flat(int(code), end + STEP))
        per_counter = [self.expect(alert, {**g, "xid": c}, 1) for g, c in zip(gpus, codes, strict=True)]
        rising.checks.append((end, alert.name, per_counter))
        appearing.checks.append((end, alert.name, per_counter))
        gauge.checks.append((end, alert.name, [self.expect(alert, g, int(c), {"xid": c})
                                               for g, c in zip(gauge_gpus, codes, strict=True)]))
        labels = gpus[0]
        counter_quiet = Case(f"{alert.name} XID {other} counter only: quiet")
        counter_quiet.add(n.xid_errors, {**labels, "xid": other}, f"1x3 2x{end // STEP}")
        counter_quiet.checks.append((end, alert.name, []))
        gauge_quiet = Case(f"{alert.name} XID {other} in the last-value gauge: quiet")
        gauge_quiet.add(n.xid_last, labels, flat(int(other), end + STEP))
        gauge_quiet.checks.append((end, alert.name, []))
        return [rising, appearing, gauge, counter_quiet, gauge_quiet]

    def _up_series(self, case: Case, hosts, down: Host | None, seconds: int):
        for host in hosts:
            case.add("up", self._up_labels(host), flat(0 if host is down else 1, seconds))

    def _up_labels(self, host: Host) -> dict:
        return {"job": GPU_EXPORTER_JOB, "instance": host.exporter_target, **target_labels(self.model, host)}

    def _GPUMissing(self, alert, gpu, t):
        host = self.model.hosts[0]
        hold = hold_of(alert)
        duration = hold + 10 * STEP
        fire = Case(f"{alert.name} {host.name}: one of {host.gpu_count} GPUs gone, fires")
        quiet = Case(f"{alert.name} {host.name}: all {host.gpu_count} GPUs report, quiet")
        # Only this host is scraped: any other host with an up exporter and no GPUs would alert too.
        for case, reporting in ((fire, host.gpu_count - 1), (quiet, host.gpu_count)):
            self._up_series(case, [host], None, duration)
            for index in range(reporting):
                case.add(self.n.gpu_temp, self.gpu_labels(host, index), flat(40, duration))
        if hold >= 2 * STEP:
            fire.checks.append((hold - STEP, alert.name, []))
        fire.checks.append((hold + STEP, alert.name, [self.expect(alert, inventory_labels(self.model, host), 1)]))
        quiet.checks.append((hold + STEP, alert.name, []))
        # The exporter keeps a lost GPU visible as gpu_up 0: the alert names that GPU, and the
        # host's shortfall does not alert a second time.
        lost_index = host.gpu_count - 1
        lost = Case(f"{alert.name} {host.name}: GPU {lost_index} reported lost, fires for that GPU")
        self._up_series(lost, [host], None, duration)
        for index in range(host.gpu_count):
            gone = index == lost_index
            lost.add(self.n.gpu_up, self.gpu_labels(host, index), flat(0 if gone else 1, duration))
            if not gone:
                lost.add(self.n.gpu_temp, self.gpu_labels(host, index), flat(40, duration))
        lost.checks.append((hold + STEP, alert.name, [
            self.expect(alert, self.gpu_labels(host, lost_index), 1, {"gpu_model": host.gpu.key})]))
        return [fire, quiet, lost]

    def _GPUExporterStale(self, alert, gpu, t):
        """Collections stop at time 0 while scrapes go on; promtool's clock starts at 0, so the
        last-success timestamp is the age of the readings."""
        host = self.model.hosts[0]
        hold = hold_of(alert)
        stale_from = (self.model.prometheus.exporter_stale_seconds // STEP + 1) * STEP
        end = stale_from + hold + STEP
        labels = self._up_labels(host)
        fire = Case(f"{alert.name} {host.name}: collections stopped, fires")
        fire.add(self.n.exporter_last_success, labels, flat(0, end + STEP))
        fire.checks.append((end - 2 * STEP, alert.name, []))
        fire.checks.append((end, alert.name, [self.expect(alert, labels, end)]))
        quiet = Case(f"{alert.name} {host.name}: collections keep up, quiet")
        quiet.add(self.n.exporter_last_success, labels, f"0+{STEP}x{end // STEP + 1}")
        quiet.checks.append((end, alert.name, []))
        return [fire, quiet]

    def _GPUExporterDown(self, alert, gpu, t):
        host = self.model.hosts[0]
        hold = hold_of(alert)
        duration = hold + 10 * STEP
        others = [h for h in self.model.hosts if h is not host]
        down = Case(f"{alert.name} {host.name}: scrape fails, fires")
        self._up_series(down, self.model.hosts, host, duration)
        absent = Case(f"{alert.name} {host.name}: no scrape target at all, fires")
        self._up_series(absent, others, None, duration)
        quiet = Case(f"{alert.name}: every exporter up, quiet")
        self._up_series(quiet, self.model.hosts, None, duration)
        if hold >= 2 * STEP:
            down.checks.append((hold - STEP, alert.name, []))
        down.checks.append((hold + STEP, alert.name, [self.expect(alert, self._up_labels(host), 0)]))
        absent.checks.append((hold + STEP, alert.name,
                              [self.expect(alert, inventory_labels(self.model, host), host.gpu_count)]))
        quiet.checks.append((hold + STEP, alert.name, []))
        return [down, absent, quiet]


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
                            "exp_annotations": expected_annotations(model, alert, labels, value)}
                           for labels, value in expected],
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


def _fleet_wide_files(model: FleetModel) -> list[str]:
    """Every rule file but the global tier's inventory, which would record cluster:gpus_expected:count
    a second time: the alert and recording tests see the whole fleet as one Prometheus would."""
    return _relative(path for path in rule_files(model) if path != GLOBAL_INVENTORY)


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
    return tests


def _recording_case(b: Builder, gpu: GpuModel, t: Thresholds) -> dict:
    n = b.n
    host = b.host_of(gpu)
    labels = b.gpu_labels(host)
    duration = 20 * 60
    start = 60 if t.gpu_temp_warning is None else min(60, t.gpu_temp_warning - 20)
    power = t.power_limit_watts / 2
    samples = {
        n.gpu_temp: f"{num(start)}+0.25x80",  # rising 1 C/min
        n.power_usage: flat(power, duration),
        n.gpu_util: flat(50, duration),
        n.fb_used: flat(1024, duration),
        n.fb_free: flat(3072, duration),
    }
    series = [{"series": series_text(m, labels), "values": v} for m, v in samples.items()]
    eval_time = "10m"
    temp_at_eval = start + 10
    expectations = [
        ("gpu:power_limit:watts", t.power_limit_watts),
        ("gpu:power_warning_threshold:watts", t.power_warning_ratio * t.power_limit_watts),
        ("gpu:power_critical_threshold:watts", t.power_critical_ratio * t.power_limit_watts),
        ("gpu:power_usage:ratio_of_limit", 0.5),
        ("gpu:utilization:ratio", 0.5),
        ("gpu:framebuffer_used:ratio", 0.25),
        ("gpu:health_memory:score", 1),
        ("gpu:health_ecc:score", 1),
        ("gpu:health_throttle:score", 1),
    ]
    if t.gpu_temp_warning is not None:
        expectations.append(("gpu:temperature_warning_threshold:celsius", t.gpu_temp_warning))
    if t.gpu_temp_critical is not None:
        critical = t.gpu_temp_critical
        expectations.append(("gpu:temperature_critical_threshold:celsius", critical))
        expectations.append(("round(gpu:temperature:seconds_to_critical)", round((critical - temp_at_eval) * 60)))
    host_by = {"cluster": host.cluster, n.host: host.name}
    # A recorded series keeps its name; an expression's result has none.
    tests = [{"expr": expr, "eval_time": eval_time,
              "exp_samples": [{"labels": series_text("" if "(" in expr else expr, labels), "value": _num(value)}]}
             for expr, value in expectations]
    tests += [
        {"expr": "host:gpu_power_watts:sum", "eval_time": eval_time,
         "exp_samples": [{"labels": series_text("host:gpu_power_watts:sum", host_by), "value": _num(power)}]},
        {"expr": "fleet:gpus:count", "eval_time": eval_time,
         "exp_samples": [{"labels": "fleet:gpus:count", "value": 1}]},
        {"expr": "fleet:gpus_healthy:count", "eval_time": eval_time,
         "exp_samples": [{"labels": "fleet:gpus_healthy:count", "value": 1}]},
        {"expr": "round(gpu:power_usage:zscore_1h, 0.001)", "eval_time": eval_time,
         "exp_samples": [{"labels": series_text("", labels), "value": 0}]},
    ]
    return {"name": f"recording rules for a healthy {gpu.key}", "interval": f"{STEP}s",
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
    evaluation = {"rule_files": _fleet_wide_files(model), "evaluation_interval": f"{STEP}s"}
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
