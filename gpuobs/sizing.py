"""How many GPUs one Prometheus can evaluate the generated rules for: `gpuobs validate` warns
before a fleet (or a cluster, with a Prometheus per cluster) outgrows it."""

from __future__ import annotations

from gpuobs.model import FleetModel
from gpuobs.promql import seconds

# GPUs one Prometheus evaluates every generated rule group for in under a tenth of a 15 s
# evaluation interval, from benchmarks/rules.py on a 2-core machine whose speed varies from day to
# day: 10,000 GPUs took 1.27 s of rule evaluation per 15 s (amortized over the tiers) on a day when
# copying one series per GPU took 95 ms, 13.4 such copies, and 2.7 s on a day when it took 234 ms.
# The figure holds on the slow days. The rules run once per interval, so it scales with the
# interval; Prometheus evaluates groups side by side, so a server with more cores holds more.
GPUS_AT_15S = 5_000


def gpus_per_prometheus(model: FleetModel) -> float:
    return GPUS_AT_15S * seconds(model.prometheus.evaluation_interval) / 15


def report(model: FleetModel) -> list[str]:
    """One line per Prometheus that would hold more GPUs than gpus_per_prometheus."""
    limit = gpus_per_prometheus(model)
    every = model.prometheus.evaluation_interval
    if not model.per_cluster:
        total = sum(h.gpu_count for h in model.hosts)
        if total <= limit:
            return []
        return [f"warning: one Prometheus for {total:,} GPUs; at an evaluation interval of {every} it evaluates "
                f"the rules for about {limit:,.0f} within a tenth of the interval. Give each cluster a Prometheus "
                "of its own (a `prometheus` section under clusters[], see README 'More than one Prometheus'), "
                "or lengthen prometheus.evaluation_interval."]
    lines = []
    for server in model.servers:
        gpus = sum(h.gpu_count for h in model.hosts if h.cluster == server.cluster)
        if gpus > limit:
            lines.append(f"warning: cluster {server.cluster}'s Prometheus holds {gpus:,} GPUs; at an evaluation "
                         f"interval of {every} it evaluates the rules for about {limit:,.0f} within a tenth of "
                         "the interval. Split the cluster in the spec, or lengthen prometheus.evaluation_interval.")
    return lines
