"""Efficiency alert: a GPU (or MIG instance) a pod or HPC job holds, idle for the spec's
`efficiency.idle.for`. Only a fleet whose spec has an `efficiency` section has it.

It reads what the efficiency rules record per allocation (generators/efficiency.py), so its value
is the allocation's busy fraction and it carries the owner's labels: the host's team (which routes
it to that team's receivers), namespace, pod and container, or the HPC job. The threshold lives in
that recording, so the alert and the dashboard's idle counts never disagree. It reads the last
recording within BRIDGED evaluations of the efficiency rules: a failed scrape (a stale sample) or an
exporter restart would otherwise restart an hour's count, at the cost of resolving that much later.

Warning, not critical: an idle allocation costs money, it breaks nothing, so it never pages; a
warning reaches the owning team's (or the fleet's) ticket receiver within working hours where the
spec mutes warnings outside them. It is no statement on the GPU's health (rules.firing_gpu_alerts).
"""

from __future__ import annotations

import math

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof, Rule
from gpuobs.promql import num, sel
from gpuobs.promtool_cases import STEP, Case, flat, hold_of
from gpuobs.series import ALLOCATED_IDLE, ALLOCATED_UTILIZATION, can_attribute, names_of
from gpuobs.tiers import STATIC, tier_seconds

NAME = "GPUAllocatedIdle"
# Who holds the GPU, a rule each (its `held_by` label): a pod (with or without an HPC job), else an
# HPC job alone; (held_by, matchers, how the description names the holder).
HOLDERS = (("pod", ('namespace!=""',), "pod {{ $labels.namespace }}/{{ $labels.pod }}"),
           ("hpc_job", ('hpc_job!=""', 'namespace=""'), "HPC job {{ $labels.hpc_job }}"))
BUSY_PERCENT = 90
BRIDGED = 2  # evaluations of the efficiency rules a gap in what the alert reads may last


def _fill(model, holder: str) -> dict:
    e = model.efficiency
    return {"holder": holder, "threshold": num(e.idle_threshold * 100), "for": model.alert(NAME).for_}


def _variants(d, model, ns) -> list[Rule]:
    """A rule per kind of holder, so each description names it; none where no exporter setup can
    name who holds a GPU (the efficiency rules then record no allocation)."""
    if not any(can_attribute(n) for n in ns):
        return []
    window = f"{BRIDGED * tier_seconds(model.prometheus.evaluation_interval, STATIC)}s"
    return [Rule(f"100 * last_over_time({sel(ALLOCATED_UTILIZATION, *matchers)}[{window}])\nand\n"
                 f"last_over_time({ALLOCATED_IDLE}[{window}]) == 1", {"held_by": kind}, _fill(model, holder))
            for kind, matchers, holder in HOLDERS]


def _cases(b, alert, gpu, t) -> list[Case]:
    """Per exporter setup that names holders and serves utilization, on one host: an idle pod (one
    of its scrapes failed halfway) and an idle HPC job fire, with their owners' labels (and not
    before `for` elapses); a busy pod, an idle GPU nobody holds and a pod idle for half of `for`,
    busy before, stay quiet."""
    model = b.model
    idle = math.floor(model.efficiency.idle_threshold * 100 / 2)
    hold, due = hold_of(alert), b.due(alert)
    switch = due - hold // 2  # when the late idler's pod stops working
    late = f"{num(BUSY_PERCENT)}x{switch // STEP - 1} {num(idle)}x{(due - switch) // STEP}"
    notebook = {"namespace": "research", "pod": "notebook-0", "container": "lab"}
    halfway = hold // 2 // STEP
    failed_scrape = f"{num(idle)}x{halfway - 1} stale {num(idle)}x{due // STEP - halfway - 1}"
    firing = ((notebook, HOLDERS[0], failed_scrape if halfway > 1 else idle), ({"hpc_job": "4242"}, HOLDERS[1], idle))
    quiet = [({"namespace": "ml", "pod": "train-2", "container": "trainer"}, BUSY_PERCENT), ({}, idle)]
    if hold >= 2 * STEP:  # a `for` of a step or none has no half to be idle for
        quiet.append(({**notebook, "pod": "notebook-4"}, late))
    cases = []
    for n in names_of(model):
        hosts = model.hosts_of(n.exporter)
        if not (can_attribute(n) and n.serves("gpu_util") and hosts):
            continue
        host = next((h for h in hosts if not h.mig), hosts[0])
        b.use(host)
        name = f"{alert.name} {n.exporter.job} {host.gpu.key}"
        fire = Case(f"{name}: an idle pod (a scrape failed halfway) and an idle HPC job, fire")
        expected = []
        for index, (workload, (kind, _, holder), utilization) in enumerate(firing):
            _held_gpu(b, fire, host, index, workload, utilization, due)
            owner = {**b.inventory_labels(host), "gpu": str(index), **workload}
            expected.append(b.expect(alert, owner, idle, {"held_by": kind}, _fill(model, holder)))
        if hold >= 2 * STEP:
            fire.checks.append((hold - STEP, alert.name, []))
        fire.checks.append((due, alert.name, expected))
        calm = Case(f"{name}: a busy pod, an idle GPU nobody holds, a pod idle for half of `for`, quiet")
        for index, (workload, percent) in enumerate(quiet, start=len(firing)):
            _held_gpu(b, calm, host, index, workload, percent, due)
        calm.checks.append((due, alert.name, []))
        cases += [fire, calm]
    return cases


def _held_gpu(b, case: Case, host, index: int, workload: dict, percent, due: int) -> None:
    """A GPU's utilization (a percentage held flat, or the text of its values), with the series
    that make it present and, where served, held (the framebuffer in use)."""
    n = b.n
    labels = {**b.gpu_labels(host, index), **workload}
    inputs = {n.gpu_util: percent if isinstance(percent, str) else flat(b.value("gpu_util", percent), due)}
    if n.serves("fb_used"):
        inputs[n.fb_used] = flat(b.value("fb_used", 1024), due)
    inputs.update({metric: flat(value, due) for metric, _, value in b.presence(labels)})
    for metric, values in inputs.items():
        case.add(metric, labels, values)


ALERTS = (
    AlertDef(NAME, "efficiency", "warning", "notify", "1h",
             "Allocated GPU idle",
             f"{GPU_TEXT} is held by {{holder}} but has been under {{threshold}}% busy for {{for}} ({VALUE_TEXT}% "
             "now): release it or put it to work.",
             panel=(links.EFFICIENCY, links.IDLE_ALLOCATIONS_PANEL),
             proof=Proof((), {"held_by": "pod", "namespace": "research", "container": "notebook"}, idle_pod=True),
             section="efficiency", section_for=lambda efficiency: efficiency.idle.for_,
             cases_per="fleet", variants=_variants, cases=_cases),
)
