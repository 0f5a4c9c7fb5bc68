"""promtool cases for the efficiency rules, with values: four GPUs of one host, a busy pod's, an
idle pod's, an idle GPU nobody holds and a busy HPC job's, each drawing a constant power through
a ramping energy counter; and, where the setup has MIG hosts, a pod holding one MIG instance.

Amounts are compared in millionths, rounded (`round(x * 1e6)`): promtool compares values exactly,
and energy and cost come out of divisions no input can make exact.
"""

from __future__ import annotations

import math

from gpuobs.generators import efficiency, promtests
from gpuobs.gpus import slices_of
from gpuobs.model import FleetModel, Host
from gpuobs.promql import num
from gpuobs.promtool_cases import STEP, flat, series_text
from gpuobs.promtool_cases import held as held_for

MICRO = 1_000_000
BUSY_PERCENT = 90
POWER_WATTS = 360
DURATION = 20 * 60
EVAL_TIME = "10m"
ENERGY_START_MJ = 10**9  # far from zero: increase() never clamps the counter's extrapolation at zero
# (GPU index, workload labels, busy): GPU 2 is held by nobody.
WORKLOADS = (
    (0, {"namespace": "ml", "pod": "train-0", "container": "trainer"}, True),
    (1, {"namespace": "research", "pod": "notebook-1", "container": "lab"}, False),
    (2, {}, False),
    (3, {"hpc_job": "4242"}, True),
)
MIG_WORKLOAD = {"namespace": "serving", "pod": "infer-0", "container": "server"}
MIG_ACTIVITY = 0.5


def micro(expr: str) -> str:
    return f"round({expr} * {MICRO})"


def micro_value(value: float) -> int:
    """PromQL's round(): half up."""
    return math.floor(value * MICRO + 0.5)


def _sample(labels: dict, value) -> dict:
    return {"labels": series_text("", labels), "value": value}


def _check(expr: str, samples: list[dict], named: bool = True) -> dict:
    """A recorded series keeps its name; an expression's result (rounded) has none."""
    if named:
        samples = [{**s, "labels": expr + s["labels"]} for s in samples]
    return {"expr": expr, "eval_time": EVAL_TIME, "exp_samples": samples}


def efficiency_tests(model: FleetModel, b: promtests.Builder) -> list[dict]:
    """Per exporter setup: allocations where it attributes GPUs (and a MIG instance where it has MIG
    hosts), energy and cost alone where it cannot (nvidia_gpu_exporter)."""
    if model.efficiency is None:
        return []
    tests = []
    for n in list(b.names.values()):
        hosts = model.hosts_of(n.exporter)
        if not (n.serves("total_energy") or n.serves("power_usage")):
            continue
        if not (n.profile.has_label("gpu") and n.serves("gpu_util")):
            tests.append(_energy_only(model, b, hosts[0]))
            continue
        tests.append(_allocations(model, b, next((h for h in hosts if not h.mig), hosts[0])))
        mig = next((h for h in hosts if h.mig), None)
        if mig is not None and n.serves("gr_engine_active") and n.serves("fb_used"):
            tests.append(_mig_allocation(model, b, mig))
    return tests


def _energy_series(n, labels: dict, steps: int) -> dict:
    """A GPU drawing POWER_WATTS, as the setup tells it: its energy counter, else its power draw."""
    if n.serves("total_energy"):
        return {n.total_energy: f"{ENERGY_START_MJ}+{POWER_WATTS * STEP * 1000}x{steps}"}
    return {n.power_usage: POWER_WATTS}


def _held(model: FleetModel, host: Host, index: int, workload: dict) -> dict:
    """An allocation's labels: the GPU, its host's model and owner, the workload."""
    team = {"team": host.team} if host.team else {}
    return {"cluster": host.cluster, model.prometheus.host_label: host.name, "gpu": str(index),
            "gpu_model": host.gpu.key, **team, **workload}


def _workload(host: Host, workload: dict) -> dict:
    """A workload's labels: cluster, team, namespace, HPC job."""
    team = {"team": host.team} if host.team else {}
    return {"cluster": host.cluster, **team, **{k: v for k, v in workload.items() if k not in ("pod", "container")}}


def _allocations(model: FleetModel, b: promtests.Builder, host: Host) -> dict:
    e = model.efficiency
    n = b.use(host)
    idle_percent = math.floor(e.idle_threshold * 100 / 2)
    every = efficiency.interval_seconds(model)
    hours = every / 3600
    energy = POWER_WATTS * every / efficiency.JOULES_PER_KWH
    energy_price = dict(e.energy_price)[host.cluster]
    hour_price = dict(e.gpu_hour_price)[host.gpu.key]
    steps = DURATION // STEP

    inputs: dict[str, tuple[dict, str]] = {}
    held, per_gpu, workloads = [], [], []
    for index, workload, busy in WORKLOADS:
        labels = {**b.gpu_labels(host, index), **workload}
        percent = BUSY_PERCENT if busy else idle_percent
        series = {n.gpu_util: percent}
        if n.serves("fb_used"):
            series[n.fb_used] = 1024
        series.update({metric: value for metric, _, value in b.presence(labels)})
        series.update(_energy_series(n, labels, steps))
        for metric, value in series.items():
            inputs[series_text(metric, labels)] = (labels, held_for(value, DURATION))
        per_gpu.append(b.expect_labels(b.gpu_labels(host, index)))
        if workload:
            utilization = percent / 100
            held.append((_held(model, host, index, workload), utilization))
            workloads.append((_workload(host, workload), utilization))

    gpus = len(WORKLOADS)
    own_cost = gpus * (energy * energy_price + hours * hour_price)
    owned = {"cluster": host.cluster, **({"team": host.team} if host.team else {})}
    checks = [
        _check(efficiency.ENERGY_PRICE, [_sample({"cluster": c}, p) for c, p in e.energy_price]),
        _check(efficiency.GPU_HOUR_PRICE, [_sample({"gpu_model": m}, p) for m, p in e.gpu_hour_price]),
        _check(efficiency.ALLOCATED, [_sample(labels, 1) for labels, _ in held]),
        _check(efficiency.ALLOCATED_UTILIZATION, [_sample(labels, u) for labels, u in held]),
        _check(efficiency.ALLOCATED_IDLE, [_sample(labels, int(u < e.idle_threshold)) for labels, u in held]),
        _check(micro(efficiency.ENERGY), [_sample(labels, micro_value(energy)) for labels in per_gpu], False),
        _check(micro("host:gpu_energy:kwh"), [_sample({"cluster": host.cluster, model.prometheus.host_label: host.name},
                                                      micro_value(gpus * energy))], False),
        _check(micro("cluster:gpu_energy:kwh"), [_sample({"cluster": host.cluster}, micro_value(gpus * energy))],
               False),
        _check(micro("cluster:gpu_cost:sum"), [_sample({"cluster": host.cluster}, micro_value(own_cost))], False),
        _check("workload:gpus_allocated:sum", [_sample(w, 1) for w, _ in workloads]),
        _check("workload:gpus_idle:sum", [_sample(w, int(u < e.idle_threshold)) for w, u in workloads]),
        _check(micro("workload:gpu_hours_allocated:sum"), [_sample(w, micro_value(hours)) for w, _ in workloads],
               False),
        _check(micro("workload:gpu_hours_used:sum"), [_sample(w, micro_value(u * hours)) for w, u in workloads],
               False),
        _check(micro("workload:gpu_energy:kwh"), [_sample(w, micro_value(energy)) for w, _ in workloads], False),
        _check(micro("workload:gpu_cost:sum"),
               [_sample(w, micro_value(energy * energy_price + hours * hour_price)) for w, _ in workloads], False),
    ]
    if host.team:
        checks += [_check(micro("team:gpu_energy:kwh"), [_sample(owned, micro_value(gpus * energy))], False),
                   _check(micro("team:gpu_cost:sum"), [_sample(owned, micro_value(own_cost))], False)]
    intensity = dict(e.carbon_intensity).get(host.cluster)
    if intensity is not None:
        checks.append(_check(micro("cluster:gpu_carbon:grams"),
                             [_sample({"cluster": host.cluster}, micro_value(gpus * energy * intensity))], False))
    series = [{"series": text, "values": values} for text, (_, values) in inputs.items()]
    return {"name": f"efficiency rules on {host.name} ({n.exporter.job}): a busy pod, an idle pod, an idle GPU "
                    "nobody holds, a busy HPC job", "interval": f"{STEP}s",
            "input_series": series, "promql_expr_test": checks}


def _mig_allocation(model: FleetModel, b: promtests.Builder, host: Host) -> dict:
    """A pod holding one MIG instance holds its share of the GPU's compute slices."""
    n = b.use(host)
    index, profiles = host.mig[0]
    profile = profiles[0]
    mig = {n.label("mig_profile"): profile, n.label("mig_instance"): "1"}
    labels = {**b.gpu_labels(host, index), **mig, **MIG_WORKLOAD}
    series = [{"series": series_text(n.fb_used, labels), "values": flat(1024, DURATION)},
              {"series": series_text(n.gr_engine_active, labels),
               "values": flat(MIG_ACTIVITY, DURATION)}]
    share = float(num(slices_of(profile) / host.gpu.compute_slices))
    held = {**_held(model, host, index, MIG_WORKLOAD), **mig}
    owner = _workload(host, MIG_WORKLOAD)
    idle = int(MIG_ACTIVITY < model.efficiency.idle_threshold)
    checks = [
        _check(efficiency.ALLOCATED, [_sample(held, share)]),
        _check(efficiency.ALLOCATED_UTILIZATION, [_sample(held, MIG_ACTIVITY)]),
        _check(efficiency.ALLOCATED_IDLE, [_sample(held, idle)]),
        _check("workload:gpus_allocated:sum", [_sample(owner, share)]),
        _check(micro("workload:gpu_hours_used:sum"),
               [_sample(owner, micro_value(share * MIG_ACTIVITY * efficiency.interval_seconds(model) / 3600))],
               False),
    ]
    return {"name": f"efficiency rules on {host.name}: a pod holding a {profile} MIG instance holds its share of "
                    "the GPU", "interval": f"{STEP}s", "input_series": series, "promql_expr_test": checks}


def _energy_only(model: FleetModel, b: promtests.Builder, host: Host) -> dict:
    """A setup that names no workload still draws energy and costs its owners."""
    e = model.efficiency
    n = b.use(host)
    every = efficiency.interval_seconds(model)
    energy = POWER_WATTS * every / efficiency.JOULES_PER_KWH
    labels = b.gpu_labels(host, 0)
    series = {metric: value for metric, _, value in b.presence(labels)}
    series.update(_energy_series(n, labels, DURATION // STEP))
    cost = energy * dict(e.energy_price)[host.cluster] + every / 3600 * dict(e.gpu_hour_price)[host.gpu.key]
    checks = [_check(micro(efficiency.ENERGY), [_sample(b.expect_labels(labels), micro_value(energy))], False),
              _check(micro("cluster:gpu_cost:sum"), [_sample({"cluster": host.cluster}, micro_value(cost))], False)]
    return {"name": f"efficiency rules on {host.name} ({n.exporter.job}): energy and cost of a GPU nobody is "
                    "known to hold", "interval": f"{STEP}s",
            "input_series": [{"series": series_text(metric, labels),
                              "values": held_for(value, DURATION)} for metric, value in series.items()],
            "promql_expr_test": checks}
