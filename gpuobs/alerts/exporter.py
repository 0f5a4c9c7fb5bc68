"""Exporter alerts: a GPU exporter down or absent, or serving frozen readings."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import AlertDef, Proof
from gpuobs.catalog import GPU_IDENTITY, WORKLOAD_LABELS
from gpuobs.promql import sel
from gpuobs.promtool_cases import STEP, Case, flat, hold_of
from gpuobs.series import each_setup, exporter_up

PANEL = (links.MONITORING, links.SCRAPE_TARGETS_PANEL)


def _down(d, model, ns) -> str:
    h, up = ns[0].host, exporter_up(model)
    return f"{up} == 0\nor on (cluster, {h})\n({ns[0].inventory_expected_gpus} unless on (cluster, {h}) {up})"


def _down_cases(b, alert, gpu, t):
    model = b.model
    host = model.hosts[0]
    hold, due = hold_of(alert), b.due(alert)
    others = [h for h in model.hosts if h is not host]
    down = Case(f"{alert.name} {host.name}: scrape fails, fires")
    b.up_series(down, model.hosts, host, due)
    absent = Case(f"{alert.name} {host.name}: no scrape target at all, fires")
    b.up_series(absent, others, None, due)
    quiet = Case(f"{alert.name}: every exporter up, quiet")
    b.up_series(quiet, model.hosts, None, due)
    if hold >= 2 * STEP:
        down.checks.append((hold - STEP, alert.name, []))
    down.checks.append((due, alert.name, [b.expect(alert, b.up_labels(host), 0)]))
    absent.checks.append((due, alert.name, [b.expect(alert, b.inventory_labels(host), host.gpu_count)]))
    quiet.checks.append((due, alert.name, []))
    return [down, absent, quiet]


def _stale(n, model) -> str | None:
    """Readings frozen: our exporter says when it last collected; for others, no GPU of the host
    advanced its energy counter (which grows whenever a GPU draws any power)."""
    stale = model.prometheus.exporter_stale_seconds
    if n.serves("exporter_last_success"):
        return f"time() - {sel(n.exporter_last_success, n.job)} > {stale}"
    if n.serves("total_energy"):
        identity = [n.profile.label(k) for k in (*GPU_IDENTITY, "driver_version") if n.profile.has_label(k)]
        identity += [name for name in ("Hostname", "hostname") if name not in identity]  # 3.x/4.x spell it both ways
        drop = ", ".join(identity + list(n.mig) + list(WORKLOAD_LABELS))
        # Compared with its value a window ago, not changes() over the window: a target scraped less
        # often than the window has one sample in every window, which changes() reads as frozen.
        energy = sel(n.total_energy, n.job)
        return f"(max without ({drop}) ({energy} - {energy} offset {stale}s) == 0) + {stale}"
    return None


def _stale_cases(b, alert, gpu, t):
    """Collections stop at time 0 while scrapes go on; promtool's clock starts at 0, so the
    last-success timestamp is the age of the readings."""
    host = next(h for h in b.model.hosts if h.exporter is b.n.exporter)
    stale = b.model.prometheus.exporter_stale_seconds
    stale_from = (stale // STEP + 1) * STEP
    end = stale_from + b.due(alert)
    labels = b.up_labels(host)
    if not b.n.serves("exporter_last_success"):
        return _frozen_energy(b, alert, host, stale)
    fire = Case(f"{alert.name} {host.name}: collections stopped, fires")
    fire.add(b.n.exporter_last_success, labels, flat(0, end + STEP))
    fire.checks.append((stale_from + hold_of(alert) - STEP, alert.name, []))
    fire.checks.append((end, alert.name, [b.expect(alert, labels, end)]))
    quiet = Case(f"{alert.name} {host.name}: collections keep up, quiet")
    quiet.add(b.n.exporter_last_success, labels, f"0+{STEP}x{end // STEP + 1}")
    quiet.checks.append((end, alert.name, []))
    return [fire, quiet]


def _frozen_energy(b, alert, host, stale):
    """Without a last-collection timestamp: every GPU's energy counter stops advancing."""
    n = b.n
    labels = b.gpu_labels(host)
    start = (stale // STEP + 2) * STEP  # a full window of samples before anything can fire
    end = start + stale + b.due(alert) + STEP
    frozen_at = start
    fire = Case(f"{alert.name} {n.exporter.job} {host.name}: energy counter frozen, fires")
    steps = frozen_at // STEP
    fire.add(n.total_energy, labels, f"0+1000x{steps} {1000 * steps}x{(end - frozen_at) // STEP}")
    fire.checks.append((end, alert.name, [b.expect(alert, b.up_labels(host), stale)]))
    quiet = Case(f"{alert.name} {n.exporter.job} {host.name}: energy counter advancing, quiet")
    quiet.add(n.total_energy, labels, f"0+1000x{end // STEP + 1}")
    quiet.checks.append((end, alert.name, []))
    # Scraped less often than the window (a step more than it between samples): no window holds two
    # samples, so no window shows a change, yet the counter advances at every scrape.
    gap = stale // STEP + 1
    sparse = Case(f"{alert.name} {n.exporter.job} {host.name}: scraped less often than the window, quiet")
    sparse.add(n.total_energy, labels, " ".join(str(1000 * i) if i % gap == 0 else "_"
                                                for i in range(end // STEP + 1)))
    sparse.checks.append((end, alert.name, []))
    return [fire, quiet, sparse]


ALERTS = (
    AlertDef("GPUExporterDown", "exporter", "critical", "notify", "2m",
             "GPU exporter down or absent",
             "The GPU exporter of {{ $labels.cluster }}/{{ $labels.host }} cannot be scraped or has no "
             "scrape target; its GPUs are unobserved.",
             panel=PANEL, proof=Proof((("exporter-hang", {}),)), scope="host", cases_per="fleet",
             expression=_down, cases=_down_cases),
    AlertDef("GPUExporterStale", "exporter", "critical", "notify", "2m",
             "GPU exporter serving frozen readings",
             "The GPU exporter of {{ $labels.cluster }}/{{ $labels.host }} answers scrapes but its "
             'readings have not changed for at least {{ printf "%.0f" $value }} seconds (NVML or DCGM wedged?); '
             "its GPUs' "
             "readings are frozen and their alerts cannot fire.",
             panel=PANEL, proof=Proof((("collection-stall", {}),)), scope="host", cases_per="setup",
             needs=(("exporter_last_success", "total_energy"),),
             expression=lambda d, model, ns: each_setup(ns, lambda n: _stale(n, model)), cases=_stale_cases),
)
