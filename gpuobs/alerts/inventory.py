"""Inventory alert: fewer GPUs reporting than the spec's inventory lists for a host."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import VALUE_TEXT, AlertDef, Proof
from gpuobs.promtool_cases import STEP, Case, flat, hold_of
from gpuobs.series import HOST_GPUS, exporter_up, union


def _expression(d, model, ns) -> str:
    """A GPU the exporter reports lost is named; otherwise only the shortfall of the host is known."""
    h = ns[0].host
    lost = [n for n in ns if n.serves("gpu_up")]
    reporting = (f"{HOST_GPUS}\n    or on (cluster, {h})\n"
                 f"    0 * max by (cluster, {h}) ({exporter_up(model)} == 1)")
    shortfall = (f"  {ns[0].inventory_expected_gpus}\n  - on (cluster, {h}) group_left ()\n"
                 f"  (\n    {reporting}\n  )\n  > 0")
    if not lost:
        return f"(\n{shortfall}\n)"
    gpu_lost = union([n.gpu("gpu_up", where="== 0") for n in lost])
    # `or on (cluster, host)`: a host's shortfall only where no lost GPU of it is named.
    return (f"(1 - ({gpu_lost}))\n* on (cluster, {h}) group_left (gpu_model)\n"
            f"({ns[0].inventory_expected_gpus} > bool 0)\nor on (cluster, {h})\n(\n{shortfall}\n)")


def _cases(b, alert, gpu, t):
    model = b.model
    host = model.hosts[0]
    hold, due = hold_of(alert), b.due(alert)
    fire = Case(f"{alert.name} {host.name}: one of {host.gpu_count} GPUs gone, fires")
    quiet = Case(f"{alert.name} {host.name}: all {host.gpu_count} GPUs report, quiet")
    # Only this host is scraped: any other host with an up exporter and no GPUs would alert too.
    for case, reporting in ((fire, host.gpu_count - 1), (quiet, host.gpu_count)):
        b.up_series(case, [host], None, due)
        for index in range(reporting):
            for metric, labels, v in b.presence(b.gpu_labels(host, index)):
                case.add(metric, labels, flat(v, due))
    if hold >= 2 * STEP:
        fire.checks.append((hold - STEP, alert.name, []))
    fire.checks.append((due, alert.name, [b.expect(alert, b.inventory_labels(host), 1)]))
    quiet.checks.append((due, alert.name, []))
    if not b.n.serves("gpu_up"):
        return [fire, quiet]
    # The exporter keeps a lost GPU visible as gpu_up 0: the alert names that GPU, and the
    # host's shortfall does not alert a second time.
    lost_index = host.gpu_count - 1
    lost = Case(f"{alert.name} {host.name}: GPU {lost_index} reported lost, fires for that GPU")
    b.up_series(lost, [host], None, due)
    for index in range(host.gpu_count):
        gone = index == lost_index
        lost.add(b.n.gpu_up, b.gpu_labels(host, index), flat(0 if gone else 1, due))
    lost.checks.append((due, alert.name, [
        b.expect(alert, b.gpu_labels(host, lost_index), 1, {"gpu_model": host.gpu.key})]))
    return [fire, quiet, lost]


ALERTS = (
    AlertDef("GPUMissing", "inventory", "critical", "quarantine", "2m",
             "Fewer GPUs reporting than the inventory says",
             "{{ $labels.cluster }}/{{ $labels.host }} reports "
             f"{VALUE_TEXT} GPUs fewer than the {{{{ $labels.gpu_model }}}} GPUs its inventory lists.",
             panel=(links.GPU_DETAIL, links.GPUS_REPORTING_PANEL),
             # The GPU falls off the bus at once.
             proof=Proof((("xid-79", {"lost_after_s": 0}),)),
             scope="host", cases_per="fleet", expression=_expression, cases=_cases),
)
