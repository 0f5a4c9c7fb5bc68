"""promtool unit tests generated from the spec: every alert, per GPU model where thresholds vary.

Each alert gets a case that must fire, with its exact labels and annotations, and a case just
below its threshold (or before its `for` elapses) that must not. Inputs are sampled every 15s
like a real scrape; counter inputs ramp linearly so increase() is exact on Prometheus 2 and 3.
Cases pass whatever order promtool evaluates the rule groups in (see chain_lengths). Each alert
writes its own cases (its entry in gpuobs/alerts/) with the Builder here.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re

from gpuobs.generators import efficiency_tests, own_rules
from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import (
    EVALUATION_ORDER,
    FLEET_RULES,
    GLOBAL_INVENTORY,
    active_alerts,
    alert_labels,
    expected_annotations,
    expected_gpus,
    global_inventory_rules,
    global_rule_files,
    inventory_labels,
    rule_files,
)
from gpuobs.generators.rules import generate as rule_documents
from gpuobs.gpus import GpuModel
from gpuobs.model import Alert, FleetModel, Host
from gpuobs.promql import num
from gpuobs.promtool_cases import BASELINE, STEP, Case, flat, held, hold_of, ramp_after_baseline, series_text
from gpuobs.series import Names, seconds_to_critical, zscore
from gpuobs.thresholds import Thresholds

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


class Builder:
    """Writes the fleet's alert cases: holds the exporter setup under test (`n`) and gives the
    alerts' own case writers (gpuobs/alerts/) the GPUs, labels, inputs and case shapes they use."""

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
        labels = self.up_labels(host)
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

    def inventory_labels(self, host: Host) -> dict:
        return inventory_labels(self.model, host)

    # -- cases per alert ----------------------------------------------------------------
    def cases(self) -> list[Case]:
        """Each active alert's cases, as its catalog entry writes them (see AlertDef.cases_per)."""
        cases: list[Case] = []
        thresholds = dict(self.model.thresholds)
        for alert in active_alerts(self.model):
            d = alert.definition
            if d.cases_per == "fleet":
                self.use(self.model.hosts[0])
                cases += d.cases(self, alert, None, None)
                continue
            for n in self.names.values():
                self.n = n
                if not all(any(n.serves(k) for k in signal) for signal in d.needs):
                    continue
                models = [g for g in self.model.models_of(n.exporter) if d.concerns(g)]
                cases += _merged([d.cases(self, alert, gpu, thresholds[gpu])
                                  for gpu in (models if d.cases_per == "model" else models[:1])])
        return cases

    # -- what alerts write their cases with ---------------------------------------------
    def gauge_alert(self, alert, name, labels, inputs_fire, inputs_quiet, value, extra=None,
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

    def counter_alert(self, alert, name, metric, labels, threshold, extra_series=()):
        """Linear ramps: one well above the threshold (must fire), one at half of it (must not)."""
        end = self.counter_end(alert)
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

    def counter_end(self, alert) -> int:
        """When counter cases check: a full 5-minute window of the ramp, then `for`, with room."""
        return BASELINE + 300 + self.due(alert) + 3 * STEP

    def up_series(self, case: Case, hosts, down: Host | None, seconds: int):
        for host in hosts:
            case.add("up", self.up_labels(host), flat(0 if host is down else 1, seconds))

    def up_labels(self, host: Host) -> dict:
        return {"job": host.exporter.job, "instance": host.exporter_target, **target_labels(self.model, host)}


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
    a second time: the alert and recording tests see the whole fleet as one Prometheus would. The
    spec's own rules have tests of their own (generators/own_rules.py)."""
    return [path for path in rule_files(model) if path not in (GLOBAL_INVENTORY, own_rules.RULES)]


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
    # Healthy, and rising at 1 C/min from whole minutes below the critical threshold.
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
            (f"round({zscore('gpu:power_usage:watts', 5)}, 0.001)", 0),
        ]
    if "gpu_util" in samples:
        expectations.append(("gpu:utilization:ratio", 0.5))
    if "fb_used" in samples and "fb_free" in samples:
        expectations += [("gpu:framebuffer_used:ratio", 1 / (1 + free / used)), ("gpu:health_memory:score", 1)]
    if "gpu_temp" in samples:
        # The health dashboard's time to the critical temperature: whole minutes, 10 minutes into
        # the rise at 1 C/min.
        to_critical = seconds_to_critical("gpu:temperature:celsius", "gpu:temperature_critical_threshold:celsius")
        expectations += [("gpu:temperature_warning_threshold:celsius", t.gpu_temp_warning),
                         ("gpu:temperature_critical_threshold:celsius", critical),
                         (f"round({to_critical}, 60)", (below - 10) * 60)]
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
    files.update(own_rules.test_files(model))
    return files
