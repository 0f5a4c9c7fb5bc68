"""Recording rules for who holds each GPU, what sits idle, the energy it draws and what it costs.

Generated only when the spec has an `efficiency` section. They run in one group on the static tier
(rules.STATIC), reading the spec's prices from the inventory group: allocation changes over
minutes, and energy and cost are amounts per evaluation, `increase()` over exactly the group's
interval, so consecutive evaluations tile time and `sum_over_time(...[range])` adds them up to the
range's total.

A GPU (or MIG instance) is allocated while its series carry a workload label: `namespace` (and
`pod`, `container`) from gpuobs-exporter's `--kubernetes-pod-resources` or dcgm-exporter's pod
mapping, `hpc_job` from either exporter's HPC job mapping. nvidia_gpu_exporter attributes nothing,
so its GPUs count towards energy and cost but are never allocated.
"""

from __future__ import annotations

from gpuobs.generators import rules
from gpuobs.model import FleetModel
from gpuobs.promql import num, quote, seconds, sel
from gpuobs.series import ALLOCATED_IDLE, ALLOCATED_UTILIZATION, PRESENT, Names, can_attribute, names_of, union

ENERGY_PRICE = "cluster:energy_price:per_kwh"
GPU_HOUR_PRICE = "gpu_model:gpu_hour_price:per_hour"
CARBON_INTENSITY = "cluster:carbon_intensity:grams_per_kwh"
ALLOCATED = "gpu:allocated:ratio"  # share of a GPU a workload holds: 1, or a MIG instance's compute share
ENERGY = "gpu:energy:kwh"  # per evaluation interval, as every :kwh, :sum of cost and :grams series here
MILLIJOULES_PER_KWH = 3.6e9
JOULES_PER_KWH = 3.6e6
# Labels naming who holds a GPU. A workload's figures are kept per cluster, spec team (the host's
# owner), Kubernetes namespace and HPC job: a label a series lacks is simply absent.
OWNER_LABELS = ("namespace", "pod", "container", "hpc_job")
WORKLOAD = "cluster, team, namespace, hpc_job"
POD_HELD, JOB_HELD, OWNED_BY_TEAM = 'namespace!=""', 'hpc_job!=""', 'team!=""'


def interval_seconds(model: FleetModel) -> float:
    """How often the group runs: what each per-interval amount covers."""
    return seconds(rules.tier_interval(model, rules.STATIC))


def _gpu_labels(model: FleetModel) -> str:
    """What identifies an allocation: the GPU, its host's model and owner, and the workload."""
    return ", ".join(("cluster", model.prometheus.host_label, "gpu", "gpu_model", "team") + OWNER_LABELS)


def _owned(metric: str, job: str, *matchers: str) -> str:
    """The series of `metric` that carry a workload, by pod or by HPC job (`or` keeps one where both)."""
    return f"{sel(metric, job, POD_HELD, *matchers)} or {sel(metric, job, JOB_HELD, *matchers)}"


def _mig_hosts(n: Names) -> bool:
    return bool(n.mig) and any(h.mig for h in n.model.hosts_of(n.exporter))


def _not_mig(n: Names) -> str:
    return f"{n.label('mig_instance')}={quote('')}"


def _mig(n: Names) -> str:
    return f"{n.label('mig_instance')}!={quote('')}"


def _allocated(n: Names, labels: str) -> str | None:
    """Whole GPUs held count 1; a MIG instance held counts its share of the GPU's compute slices."""
    if not can_attribute(n):
        return None
    metric = getattr(n, "fb_used" if n.serves("fb_used") else n.presence_key)
    if not _mig_hosts(n):
        return f"group by ({labels}) ({_owned(metric, n.job)})"
    profile, instance = n.label("mig_profile"), n.label("mig_instance")
    whole = f"group by ({labels}) ({_owned(metric, n.job, _not_mig(n))})"
    held = f"group by ({labels}, {profile}, {instance}) ({_owned(metric, n.job, _mig(n))})"
    share = (f"max without (mig_slices) (\n"
             f'  label_replace({held}, "mig_slices", "$1", {quote(profile)}, "([0-9]+)g.*")\n'
             f"  * on (gpu_model, mig_slices) group_left () {rules.MIG_FRACTION}\n)")
    return f"{whole}\nor\n{share}"


def _instance_activity(n: Names, labels: str) -> str | None:
    """A held MIG instance's busy fraction: its own graphics engine activity."""
    if not (_mig_hosts(n) and n.serves("gr_engine_active")):
        return None
    profile, instance = n.label("mig_profile"), n.label("mig_instance")
    return f"max by ({labels}, {profile}, {instance}) ({_owned(n.gr_engine_active, n.job, _mig(n))})"


def _energy(n: Names, interval: str, every: float) -> str | None:
    """kWh each GPU used in the last interval: from the energy counter (mJ), else from the power
    draw averaged over the interval."""
    if n.serves("total_energy"):
        return f"{n.gpu_increase('total_energy', interval)} / {num(MILLIJOULES_PER_KWH)}"
    if n.serves("power_usage"):
        average = n.per_gpu(f"avg_over_time({n.raw('power_usage')}[{interval}])")
        return f"{average} * {num(every / JOULES_PER_KWH)}"
    return None


def _parts(by: str, energy: str, hours: str) -> str:
    """The sum by `by` of an energy cost and a GPU-hour cost, either of which may be absent: a
    `part` label keeps the two apart until the sum."""
    return (f"sum by ({by}) (\n"
            f'  label_replace({energy}, "part", "energy", "", "")\n'
            f"  or\n"
            f'  label_replace({hours}, "part", "gpu_hours", "", "")\n)')


def price_rules(model: FleetModel, cluster: str | None = None) -> list[dict]:
    """The spec's prices as series, for the inventory group: with a Prometheus per cluster, each
    records only its own cluster's and those of its hosts' GPU models, so none ships another
    cluster's series (its external labels fill the `cluster` of the model prices)."""
    e = model.efficiency
    if e is None:
        return []
    models = {h.gpu.key for h in model.hosts if cluster in (None, h.cluster)}
    out = [{"record": ENERGY_PRICE, "expr": f"vector({num(price)})", "labels": {"cluster": name}}
           for name, price in e.energy_price if cluster in (None, name)]
    out += [{"record": GPU_HOUR_PRICE, "expr": f"vector({num(price)})", "labels": {"gpu_model": key}}
            for key, price in e.gpu_hour_price if key in models]
    out += [{"record": CARBON_INTENSITY, "expr": f"vector({num(grams)})", "labels": {"cluster": name}}
            for name, grams in e.carbon_intensity if cluster in (None, name)]
    return out


def allocation_rules(model: FleetModel) -> list[dict]:
    """Per allocation (GPU or MIG instance held by a workload): its share, busy fraction and
    whether it sits idle. A whole GPU is as busy as its utilization says."""
    labels = _gpu_labels(model)
    out = rules.recorder(model)(ALLOCATED, lambda n: _allocated(n, labels))
    if not out:
        return []
    mig = [n for n in names_of(model) if _mig_hosts(n)]
    whole = sel(ALLOCATED, *dict.fromkeys(_not_mig(n) for n in mig))
    busy = [f"{whole} * on (cluster, {model.prometheus.host_label}, gpu) group_left () gpu:utilization:ratio"]
    busy += [c for c in (_instance_activity(n, labels) for n in mig) if c]
    return out + [{"record": ALLOCATED_UTILIZATION, "expr": union(busy)},
                  {"record": ALLOCATED_IDLE,
                   "expr": f"{ALLOCATED_UTILIZATION} < bool {num(model.efficiency.idle_threshold)}"}]


def energy_rules(model: FleetModel) -> list[dict]:
    every = interval_seconds(model)
    interval = rules.tier_interval(model, rules.STATIC)
    h = model.prometheus.host_label
    out = rules.recorder(model)(ENERGY, lambda n: _energy(n, interval, every))
    if not out:
        return []
    out.append({"record": "host:gpu_energy:kwh", "expr": f"sum by (cluster, {h}) ({ENERGY})"})
    if model.teams:
        out.append({"record": "team:gpu_energy:kwh", "expr": f"sum by (cluster, team) ({sel(ENERGY, OWNED_BY_TEAM)})"})
    out.append({"record": "cluster:gpu_energy:kwh", "expr": "sum by (cluster) (host:gpu_energy:kwh)"})
    if model.efficiency.carbon_intensity:
        out.append({"record": "cluster:gpu_carbon:grams",
                    "expr": f"cluster:gpu_energy:kwh * on (cluster) group_left () {CARBON_INTENSITY}"})
    return out


def _owned_cost(model: FleetModel, by: str, *matchers: str) -> str:
    hours = num(interval_seconds(model) / 3600)
    return _parts(by, f"{sel(ENERGY, *matchers)} * on (cluster) group_left () {ENERGY_PRICE}",
                  f"{sel(PRESENT, *matchers)} * on (gpu_model) group_left () {GPU_HOUR_PRICE} * {hours}")


def cost_rules(model: FleetModel) -> list[dict]:
    """What the GPUs cost over the last interval: their energy at the cluster's price plus their
    hours at the model's. Teams and clusters pay for every GPU they own, held or not."""
    out = [{"record": "team:gpu_cost:sum", "expr": _owned_cost(model, "cluster, team", OWNED_BY_TEAM)}] \
        if model.teams else []
    return out + [{"record": "cluster:gpu_cost:sum", "expr": _owned_cost(model, "cluster")}]


def workload_rules(model: FleetModel, energy: bool) -> list[dict]:
    """Per workload (cluster, team, namespace, HPC job): GPUs held and idle now; GPU-hours held
    and used, and (with `energy`) energy and cost over the last interval. A workload pays for what
    it holds: the GPU-hours of its share, and that share of the GPU's energy."""
    h = model.prometheus.host_label
    hours = num(interval_seconds(model) / 3600)
    held_energy = f"{ENERGY} * on (cluster, {h}, gpu) group_right () {ALLOCATED}"
    held_hours = f"{ALLOCATED} * on (gpu_model) group_left () {GPU_HOUR_PRICE} * {hours}"
    out = [
        ("workload:gpus_allocated:sum", f"sum by ({WORKLOAD}) ({ALLOCATED})"),
        ("workload:gpus_idle:sum", f"sum by ({WORKLOAD}) ({ALLOCATED} * {ALLOCATED_IDLE})"),
        ("workload:gpu_hours_allocated:sum", f"sum by ({WORKLOAD}) ({ALLOCATED}) * {hours}"),
        ("workload:gpu_hours_used:sum", f"sum by ({WORKLOAD}) ({ALLOCATED} * {ALLOCATED_UTILIZATION}) * {hours}"),
    ]
    if energy:
        out += [("workload:gpu_energy:kwh", f"sum by ({WORKLOAD}) ({held_energy})"),
                ("workload:gpu_cost:sum",
                 _parts(WORKLOAD, f"{held_energy} * on (cluster) group_left () {ENERGY_PRICE}", held_hours))]
    return [{"record": name, "expr": expr} for name, expr in out]


def efficiency_rules(model: FleetModel) -> list[dict]:
    """The group's rules in the order they feed each other (a group runs its rules in order); the
    prices they read are in the inventory group (price_rules)."""
    if model.efficiency is None:
        return []
    allocation = allocation_rules(model)
    energy = energy_rules(model)
    out = allocation + energy + (cost_rules(model) if energy else [])
    return out + (workload_rules(model, bool(energy)) if allocation else [])
