"""Grafana dashboards (built with grafanalib) and provisioning files.

Four dashboards per fleet, plus the spec's own: fleet overview, host/GPU detail, health and
prediction, monitoring the monitoring. Every query reads recording rules or catalog names; uids
derive from the fleet's name so links and alert URLs survive regeneration.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from grafanalib import core

from gpuobs import links
from gpuobs.alerts import BLIND_ALERT
from gpuobs.catalog import DCGM_NAMES
from gpuobs.generators import efficiency, grafana_model, rules
from gpuobs.generators.rules import TOP_GPUS
from gpuobs.model import FleetModel
from gpuobs.promql import num, quote, sel
from gpuobs.series import NVLINK_ERROR_KINDS, PRESENT, Names, seconds_to_critical, zscore

DATASOURCE_UID = "gpuobs-prometheus"
EXPECTED_GPUS = DCGM_NAMES["inventory_expected_gpus"]  # recorded by the generated rules, every profile
ALERTS_METRIC = "ALERTS"
TEMPERATURE = "gpu:temperature:celsius"
POWER = "gpu:power_usage:watts"
CRITICAL_TEMPERATURE = "gpu:temperature_critical_threshold:celsius"
RECORDED_NAME = re.compile(r"\b[a-z_]+:[a-z_0-9]+:[a-z_0-9]+\b")  # level:metric:operations
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_CLASSES = {"timeseries": core.TimeSeries, "stat": core.Stat, "gauge": core.GaugePanel,
                 "bargauge": core.BarGauge, "table": core.Table, "state-timeline": core.StateTimeline,
                 "heatmap": core.Heatmap}
WIDTH = 24


@dataclass
class Panel:
    """What one panel shows; turned into a grafanalib panel, then into Grafana 11's model."""

    type: str
    title: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    w: int = 12
    h: int = 8
    id: int | None = None
    description: str = ""
    steps: list[tuple[float | None, str]] | None = None  # thresholds: (from value, colour)
    options: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # extra fieldConfig.defaults (min, max, mappings, custom)
    instant: bool = False
    format: str = ""  # the query's format; default: table for tables, else time_series

    def exprs(self) -> list[str]:
        return [q for q, _ in self.queries]


class _Encoder(json.JSONEncoder):
    """grafanalib's objects through their public `to_json_data()` (grafanalib's own encoder is private)."""

    def default(self, o):
        return o.to_json_data() if hasattr(o, "to_json_data") else super().default(o)


def _plain(built) -> dict:
    """grafanalib's objects as plain JSON data."""
    return json.loads(json.dumps(built, cls=_Encoder))


def _thresholds(steps) -> dict:
    """Grafana treats the first step as the base whatever its value and writes it as null; the
    dashboard schema wants a number, so the base gets one below the next step."""
    steps = steps or [(None, "green")]
    later = [v for v, _ in steps[1:]]
    base = min(0, min(later) - 1) if later else 0
    return {"mode": "absolute", "steps": [{"color": c, "value": base if v is None else v} for v, c in steps]}


DASHED = {"custom": {"lineStyle": {"fill": "dash", "dash": [10, 10]}}}
# Tables list GPUs: the scrape's bookkeeping columns only take room.
TABLE_TRANSFORMATIONS = [{"id": "organize", "options": {"excludeByName": {"Time": True, "job": True,
                                                                          "instance": True}}}]


def _build_panel(panel: Panel, grid: core.GridPos) -> dict:
    table = panel.type == "table"
    targets = [core.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE,
                           instant=panel.instant, format=panel.format or ("table" if table else "time_series"))
               for i, (expr, legend) in enumerate(panel.queries)]
    built = PANEL_CLASSES[panel.type](title=panel.title, description=panel.description, targets=targets,
                                      gridPos=grid, id=panel.id, dataSource=DATASOURCE,
                                      transformations=TABLE_TRANSFORMATIONS if table else [])
    defaults = grafana_model.merge({"unit": panel.unit, "thresholds": _thresholds(panel.steps),
                                    "color": {"mode": "thresholds" if panel.steps else "palette-classic"}},
                                   panel.defaults)
    return grafana_model.panel(_plain(built), panel.options, defaults)


def _layout(panels: list[Panel]) -> list[dict]:
    """Left to right, top to bottom; ids in order, except those a panel fixes (alert links)."""
    taken = {p.id for p in panels if p.id is not None}
    next_id = iter(i for i in range(1, 1000) if i not in taken)
    out, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if x + panel.w > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        if panel.id is None:
            panel.id = next(next_id)
        out.append(_build_panel(panel, core.GridPos(h=panel.h, w=panel.w, x=x, y=y)))
        x += panel.w
        row_height = max(row_height, panel.h)
    return out


class Dashboards:
    """The panels of every dashboard for one fleet."""

    def __init__(self, model: FleetModel):
        self.model = model
        self.h = model.prometheus.host_label
        self.records = rules.recorded(model)

    # -- raw exporter series, per exporter setup ---------------------------------------------------
    def raw(self, key: str, *extra: str, wrap: str = "{}", per_gpu: bool = False, gpu=None) -> list[str]:
        """One query per distinct series name the fleet's setups serve `key` as (gpuobs-exporter and
        dcgm-exporter share DCGM's names), in the catalog's unit; `wrap` formats each selector.
        `per_gpu` reduces it to one series per physical GPU, as the rules do; `gpu` keeps only the
        setups serving hosts of that model."""
        queries = []
        for exporter in self.model.exporters:
            if gpu is not None and gpu not in self.model.models_of(exporter):
                continue
            profile = exporter.profile
            if not profile.serves(key):
                continue
            # A setup naming GPUs by UUID only gets its `gpu` label from the reduction, so the
            # GPU is picked after it.
            by_uuid = per_gpu and not profile.has_label("gpu")
            query = (self.host if by_uuid else self.gpu)(profile.metric(key), *extra)
            scale = profile.scale.get(key)
            query = wrap.format(f"{query} / {scale:g}" if scale else query)
            if per_gpu:
                query = Names(self.model, exporter).per_gpu(query)
            if by_uuid:
                query = f"{query} and on (cluster, {self.h}, gpu) {self.gpu(PRESENT)}"
            if query not in queries:
                queries.append(query)
        return queries

    def served(self, legend: str, key: str, *extra: str, wrap: str = "{}", per_gpu: bool = False,
               gpu=None) -> list[tuple[str, str]]:
        return [(q, legend) for q in self.raw(key, *extra, wrap=wrap, per_gpu=per_gpu, gpu=gpu)]

    def recorded(self, query: str, legend: str) -> list[tuple[str, str]]:
        """The query when the fleet's rules record every series it reads."""
        return [(query, legend)] if set(RECORDED_NAME.findall(query)) <= self.records else []

    def unserved(self, *keys: str) -> str:
        """A panel description's note on the setups that serve none of `keys`."""
        jobs = [e.job for e in self.model.exporters if not any(e.profile.serves(k) for k in keys)]
        return f" Not served by scrape job{'s' * (len(jobs) > 1)} {', '.join(jobs)}: empty for its GPUs." \
            if jobs else ""

    # -- selectors --------------------------------------------------------------------------
    def cluster(self, metric: str) -> str:
        return sel(metric, 'cluster=~"$cluster"')

    def host(self, metric: str, *extra: str) -> str:
        return sel(metric, 'cluster=~"$cluster"', f'{self.h}=~"$host"', *extra)

    def gpu(self, metric: str, *extra: str) -> str:
        return sel(metric, 'cluster=~"$cluster"', f'{self.h}=~"$host"', 'gpu=~"$gpu"', *extra)

    @property
    def gpu_legend(self) -> str:
        return f"{{{{{self.h}}}}} GPU {{{{gpu}}}}"

    def detail_link(self) -> dict:
        """A data link from a table row to that GPU's detail dashboard."""
        uid = self.model.dashboard_uid(links.GPU_DETAIL)
        url = (f"/d/{uid}/?var-cluster=${{__data.fields.cluster}}&var-host=${{__data.fields.{self.h}}}"
               f"&var-gpu=${{__data.fields.gpu}}")
        # Grafana reads a data link's title and url; the schema types field links as dashboard
        # links, so the rest of that shape is filled in.
        return {"links": [{"title": "GPU detail", "url": url, "type": "link", "icon": "dashboard", "tooltip": "",
                           "tags": [], "asDropdown": False, "targetBlank": False, "includeVars": False,
                           "keepTime": True}]}

    # -- dashboards -------------------------------------------------------------------------
    def fleet_overview(self) -> list[Panel]:
        """Only fleet- and cluster-level series: the overview works on the fleet's one Prometheus and
        on a global tier that federates nothing else."""
        zero = " or ".join(f'label_replace(vector(0), "severity", "{s}", "", "")' for s in ("critical", "warning"))
        return [
            Panel("stat", "GPUs reporting", [("fleet:gpus:count", "")], w=4, h=4,
                  description="GPUs whose exporter reports them now."),
            Panel("stat", "GPUs expected", [("fleet:gpus_expected:count", "")], w=4, h=4,
                  description="GPUs the spec's inventory lists."),
            Panel("stat", "Healthy GPUs", [("fleet:gpus_healthy:count", "")], w=4, h=4,
                  description="Reporting GPUs without a firing warning or critical alert."),
            Panel("stat", "GPUs alerting", [("fleet:gpus_alerting:count", "")], w=4, h=4,
                  steps=[(None, "green"), (1, "red")], description="GPUs with at least one firing alert."),
            Panel("stat", "Fleet utilization", [("fleet:gpu_utilization:avg", "")], unit="percentunit", w=4, h=4),
            Panel("stat", "Fleet power", [("fleet:gpu_power_watts:sum", "")], unit="watt", w=4, h=4),
            Panel("bargauge", "Firing alerts by severity",
                  [(f"sum by (severity) ({self.cluster('cluster:alerts_firing:count')})\nor\n{zero}", "{{severity}}")],
                  w=6, h=8, instant=True,
                  steps=[(None, "green"), (1, "red")], description="Alerts firing now, per severity."),
            Panel("timeseries", "Utilization by cluster",
                  [(self.cluster("cluster:gpu_utilization:avg"), "{{cluster}}")], unit="percentunit", w=9),
            Panel("timeseries", "Power by cluster", [(self.cluster("cluster:gpu_power_watts:sum"), "{{cluster}}")],
                  unit="watt", w=9),
            Panel("heatmap", "GPU temperature distribution",
                  [(f"sum by (le) ({self.cluster('cluster:gpu_temperature_celsius:bucket')})", "{{le}}")],
                  unit="short", w=12, format="heatmap",
                  options={"calculate": False, "yAxis": {"unit": "celsius"}},
                  description="How many GPUs sit in each 5 °C band over time; a band creeping up is "
                              "a cooling problem building."),
            Panel("timeseries", "GPUs reporting and expected by cluster",
                  [(self.cluster("cluster:gpus:count"), "{{cluster}} reporting"),
                   (self.cluster("cluster:gpus_expected:count"), "{{cluster}} expected")], w=12),
            # Each cluster records its own ten; the fleet's ten are among them.
            Panel("table", "Hottest GPUs",
                  [(f"topk({TOP_GPUS}, {self.cluster(f'cluster:gpu_temperature_celsius:top{TOP_GPUS}')})", "")],
                  unit="celsius", instant=True, defaults=self.detail_link(),
                  options={"sortBy": [{"displayName": "Value", "desc": True}]}),
            Panel("table", "Least healthy GPUs",
                  [(f"bottomk({TOP_GPUS}, {self.cluster(f'cluster:gpu_health_score:bottom{TOP_GPUS}')})", "")],
                  instant=True, defaults={"min": 0, "max": 1, **self.detail_link()}),
        ]

    def gpu_detail(self) -> list[Panel]:
        legend = self.gpu_legend
        # Each model's thresholds drawn as Grafana thresholds: on the shared panel when every model
        # agrees, else on one panel per model (overrides cannot match series by name and still
        # validate against Grafana 11.6's schema, see grafana_model.py).
        per_model = {gpu: [(None, "green"), (t.gpu_temp_warning, "orange"), (t.gpu_temp_critical, "red")]
                     for gpu, t in self.model.thresholds
                     if t.gpu_temp_warning is not None and t.gpu_temp_critical is not None}
        shared = next(iter(per_model.values())) if len({str(v) for v in per_model.values()}) == 1 \
            and len(per_model) == len(self.model.thresholds) else None
        drawn = {"custom": {"thresholdsStyle": {"mode": "dashed"}}}
        model_panels = [] if shared else [
            Panel("timeseries", f"Temperature of {gpu.key} GPUs against their thresholds",
                  self.served(legend, "gpu_temp", f"gpu_model={quote(gpu.key)}", per_gpu=True, gpu=gpu),
                  unit="celsius", w=12, steps=steps, defaults=drawn)
            for gpu, steps in per_model.items()]
        on_off = {"mappings": [{"type": "value", "options": {"0": {"text": "off", "color": "green"},
                                                             "1": {"text": "active", "color": "red"}}}]}
        return [
            Panel("stat", "GPUs reporting on the host",
                  [(self.host("host:gpus:count"), "{{" + self.h + "}} reporting"),
                   (f"sum by (cluster, {self.h}) ({self.host(EXPECTED_GPUS)})",
                    "{{" + self.h + "}} expected")],
                  id=links.GPUS_REPORTING_PANEL, w=6, h=8),
            # Raw, not recorded: the recorded signals run in the slow tier, and a GPU's own panel
            # should show every scrape.
            Panel("timeseries", "Temperature", [
                *self.served(f"{legend} ({{{{gpu_model}}}})", "gpu_temp", per_gpu=True),
                (self.gpu("gpu:temperature_warning_threshold:celsius"), f"{legend} warning threshold"),
                (self.gpu("gpu:temperature_critical_threshold:celsius"), f"{legend} critical threshold")],
                unit="celsius", id=links.TEMPERATURE_PANEL, w=9, steps=shared, defaults=drawn if shared else {},
                description="Per GPU, with each GPU's own warning and critical thresholds (its reported "
                            "limits, else its model's)."),
            Panel("timeseries", "Power and its enforced limit", [
                *self.served(legend, "power_usage", per_gpu=True),
                (self.gpu("gpu:power_limit:watts"), f"{legend} limit")],
                unit="watt", id=links.POWER_PANEL, w=9),
            Panel("timeseries", "Utilization", [
                (self.gpu("gpu:utilization:ratio"), legend),
                *self.served(f"{legend} tensor pipes", "tensor_active")],
                unit="percentunit", w=8, defaults={"min": 0, "max": 1},
                description="A MIG GPU's instances count by their share of its compute slices." +
                            self.unserved("tensor_active")),
            Panel("timeseries", "Framebuffer used", [
                (self.gpu("gpu:framebuffer_used:ratio"), f"{legend} {{{{GPU_I_PROFILE}}}}")],
                unit="percentunit", id=links.MEMORY_PANEL, w=8, defaults={"min": 0, "max": 1}),
            Panel("timeseries", "SM and memory clocks", [
                *self.served(f"{legend} SM", "sm_clock"), *self.served(f"{legend} memory", "mem_clock")],
                unit="rotmhz", w=8, description=self.unserved("sm_clock").strip()),
            Panel("state-timeline", "Throttle reasons", [
                *self.recorded(self.gpu("gpu:clock_event_hw_throttle:active"), f"{legend} hardware slowdown"),
                *self.served(f"{legend} {{{{reason}}}}", "clock_event_active", 'reason!="gpu_idle"')],
                  id=links.THROTTLE_PANEL, w=24, h=10, defaults=on_off,
                  steps=[(None, "green"), (1, "red")],
                  description="Clock event reasons; hw_slowdown, hw_thermal and hw_power_brake raise "
                              "GPUThrottling, power_cap under load is normal. Per reason where the exporter "
                              "serves reasons one by one; from dcgm-exporter's bitmask the hardware "
                              "slowdown line alone." + self.unserved("clock_event_active", "clock_event_reasons")),
            # As the alerts read them: correctable errors as a rate (GPUEccCorrectableSpike), the
            # uncorrectable count since the GPU's last reset as it stands (GPUEccUncorrectable).
            Panel("timeseries", "ECC errors", [
                *self.served(f"{legend} correctable (5m)", "ecc_sbe_volatile", wrap="increase({}[5m])"),
                *self.served(f"{legend} uncorrectable since reset", "ecc_dbe_volatile", per_gpu=True)],
                id=links.ECC_PANEL, w=8,
                description="Correctable errors per 5 minutes; uncorrectable errors counted since the GPU's last "
                            "reset, which GPUEccUncorrectable fires on until a reset clears them." +
                            self.unserved("ecc_sbe_volatile", "ecc_dbe_volatile")),
            Panel("timeseries", "XID events", [
                *self.served(f"{legend} XID {{{{xid}}}} (5m)", "xid_errors", wrap="increase({}[5m])"),
                *self.served(f"{legend} XID {{{{xid}}}} in dcgm-exporter's window", "xid_window_count", 'xid!=""'),
                *self.served(f"{legend} last XID", "xid_last")],
                id=links.XID_PANEL, w=8, defaults={"custom": {"drawStyle": "bars", "fillOpacity": 80}},
                description="XIDs per code: gpuobs-exporter's counters, dcgm-exporter's windowed count "
                            "(DCGM_EXP_XID_ERRORS_COUNT) where its counters enable it, else the last XID code." +
                            self.unserved("xid_errors", "xid_window_count", "xid_last")),
            Panel("timeseries", "Row remapping", [
                *self.served(f"{legend} correctable rows", "correctable_remapped_rows"),
                *self.served(f"{legend} uncorrectable rows", "uncorrectable_remapped_rows"),
                *self.served(f"{legend} pending", "row_remap_pending"),
                *self.served(f"{legend} failed", "row_remap_failure")],
                id=links.REMAP_PANEL, w=8, description=self.unserved("row_remap_pending").strip()),
            Panel("timeseries", "NVLink and PCIe errors (5m)", [
                # Per counter from the exporter: the rules record only GPUs with errors, for the alert.
                *[q for key, kind in NVLINK_ERROR_KINDS for q in self.served(
                    f"{legend} NVLink {kind.replace('_', ' ')}", key, wrap="increase({}[5m])", per_gpu=True)],
                *self.served(f"{legend} PCIe replays", "pcie_replay", wrap="increase({}[5m])")],
                id=links.INTERCONNECT_PANEL, w=12,
                description=("NVLink: CRC, replay and recovery errors, on GPUs with NVLink where the exporter serves "
                             "them." + self.unserved("pcie_replay"))),
            Panel("timeseries", "PCIe throughput", [
                *self.served(f"{legend} tx", "pcie_tx_bytes"), *self.served(f"{legend} rx", "pcie_rx_bytes")],
                unit="Bps", w=12, description=self.unserved("pcie_tx_bytes").strip()),
        ] + model_panels

    def health(self) -> list[Panel]:
        legend = self.gpu_legend
        warning = min(t.health_score_warning for _, t in self.model.thresholds)
        components = [(self.gpu(f"gpu:health_{c}:score"), f"{legend} {c}")
                      for c in ("thermal", "power", "memory", "ecc", "throttle")]
        return [
            Panel("timeseries", "Health score", [(self.gpu("gpu:health:score"), legend)],
                  id=links.HEALTH_SCORE_PANEL, w=12, defaults={"min": 0, "max": 1},
                  steps=[(None, "red"), (warning, "green")],
                  description="Mean of five components, each 0 (bad) to 1 (healthy)."),
            Panel("timeseries", "Health components", components, w=12, defaults={"min": 0, "max": 1}),
            # Computed here for the GPUs on screen: recorded for every GPU of the fleet, these cost
            # more than all the alerts reading the temperature, and no rule reads them.
            Panel("timeseries", "Temperature z-score (1h)", self.recorded(zscore(self.gpu(TEMPERATURE), 1), legend),
                  w=8,
                  steps=[(None, "green"), (3, "red")],
                  description="Standard deviations from the GPU's own last hour (at least 1 C, so that a "
                              "steady GPU's sensor noise stays small)."),
            Panel("timeseries", "Power z-score (1h)", self.recorded(zscore(self.gpu(POWER), 5), legend), w=8,
                  steps=[(None, "green"), (3, "red")],
                  description="Standard deviations from the GPU's own last hour (at least 5 W)."),
            Panel("timeseries", "Time to critical temperature", [
                *self.recorded(seconds_to_critical(self.gpu(TEMPERATURE), self.gpu(CRITICAL_TEMPERATURE)), legend)],
                  unit="s", w=8,
                  description="At the last 10 minutes' rate of rise; absent while the GPU cools."),
            Panel("timeseries", "Temperature, measured", [(self.gpu(TEMPERATURE), legend)],
                  unit="celsius", w=12),
            Panel("timeseries", "Temperature forecast, 15 minutes ahead", [
                (f"predict_linear({self.gpu(TEMPERATURE)}[30m], 900)", f"{legend} forecast"),
                (self.gpu(CRITICAL_TEMPERATURE), f"{legend} critical threshold")],
                unit="celsius", w=12, defaults=DASHED,
                description="Dashed, beside the measured panel: where the last 30 minutes' trend puts each "
                            "GPU in 15 minutes, against its critical threshold."),
        ]

    def monitoring(self) -> list[Panel]:
        up_mappings = {"mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                                  "1": {"text": "up", "color": "green"}}}]}
        gpuobs_only = self.unserved("exporter_last_success")
        blind = (f'alertname="{BLIND_ALERT}"', 'alertstate="firing"')
        # Per GPU where a GPU lacks a served series; once per cluster and scrape job where the setup
        # never serves it, which stands for every GPU the job scrapes.
        per_gpu_blind = self.host(ALERTS_METRIC, *blind, 'gpu!=""')
        setup_blind = sel(ALERTS_METRIC, 'cluster=~"$cluster"', *blind, 'gpu=""')
        cluster_gpus = sel(PRESENT, 'cluster=~"$cluster"')
        last_success = self._exporter_series("exporter_last_success")[:1]
        return [
            Panel("state-timeline", "Scrape targets", [(self.host("up"), "{{job}} {{instance}}")],
                  id=links.SCRAPE_TARGETS_PANEL, w=24, h=8,
                  defaults=up_mappings, steps=[(None, "red"), (1, "green")]),
            Panel("table", "GPUs each alert is blind to", [(
                "sum by (blind_alert, missing) (\n"
                f"  count by (blind_alert, missing, job) ({per_gpu_blind})\n"
                f"  or sum by (blind_alert, missing, job) ({setup_blind}\n"
                f"    * on (cluster, job) group_left () count by (cluster, job) ({cluster_gpus}))\n"
                ") or on () vector(0)", "")],
                  id=links.BLIND_SPOTS_PANEL, w=24, h=8, instant=True,
                  description="How many GPUs each enabled alert cannot see, and the series it misses: a counter "
                              "the exporter's configuration leaves out (GPUAlertBlind fires once for the scrape "
                              "job, counted here as the job's GPUs), or one a GPU does not report (an alert per "
                              "GPU; 0: none). `gpuobs validate` lists the configuration's blind spots before "
                              "deployment."),
            Panel("timeseries", "Scrape duration", [(self.host("scrape_duration_seconds"), "{{job}} {{instance}}")],
                  unit="s", w=12),
            Panel("timeseries", "Samples per scrape", [(self.host("scrape_samples_scraped"), "{{job}} {{instance}}")],
                  w=12),
            Panel("timeseries", "Rule group evaluation time",
                  [("prometheus_rule_group_last_duration_seconds", "{{rule_group}}")], unit="s", w=12),
            Panel("timeseries", "Rule evaluation failures (5m)",
                  [("increase(prometheus_rule_evaluation_failures_total[5m])", "{{rule_group}}")], w=12),
            Panel("timeseries", "GPU exporter collection time",
                  [(self.host(e), "{{instance}}") for e in self._exporter_series("exporter_collection_duration")],
                  unit="s", w=8, description=gpuobs_only.strip()),
            Panel("timeseries", "GPU exporter read errors (5m)",
                  [(f"sum by (instance, field) (increase({self.host(e)}[5m]))", "{{instance}} {{field}}")
                   for e in self._exporter_series("exporter_collection_errors")], w=8,
                  description=gpuobs_only.strip()),
            Panel("stat", "Since the last good collection",
                  [(f"time() - {self.host(name)}", "{{instance}}") for name in last_success], unit="s", w=8,
                  steps=[(None, "green"), (60, "red")],
                  description="dcgm-exporter has no such figure: GPUExporterStale watches its energy counters "
                              "instead." if gpuobs_only else ""),
            Panel("timeseries", "Alertmanager notifications", [
                ("sum by (integration) (rate(alertmanager_notifications_total[5m]))", "{{integration}} sent"),
                ("sum by (integration) (rate(alertmanager_notifications_failed_total[5m]))",
                 "{{integration}} failed")], unit="ops", w=12),
            Panel("timeseries", "Alerts Prometheus sent", [
                ("rate(prometheus_notifications_sent_total[5m])", "{{alertmanager}} sent"),
                ("rate(prometheus_notifications_errors_total[5m])", "{{alertmanager}} errors"),
                ("rate(prometheus_notifications_dropped_total[5m])", "dropped")], unit="ops", w=12),
        ]

    def efficiency(self) -> list[Panel]:
        """Allocation, idle GPUs, energy and cost from the efficiency rules. Energy and cost are
        recorded per rule interval, so a range's total is their sum_over_time; over time, each point
        shows the hour before it."""
        e = self.model.efficiency
        money = f"suffix: {e.currency}"
        hours = num(efficiency.interval_seconds(self.model) / 3600)
        idle = efficiency.ALLOCATED_IDLE
        total = "sum(sum_over_time({}[$__range]))"
        hourly = "sum by ({by}) (sum_over_time({series}[1h]))"
        panels = [
            Panel("stat", "GPUs allocated", [(f"sum({self.cluster('workload:gpus_allocated:sum')}) or vector(0)", "")],
                  w=4, h=4, description="GPUs a pod or HPC job holds now (a MIG instance counts its share)."),
            Panel("stat", "Allocated GPUs idle", [(f"sum({self.cluster('workload:gpus_idle:sum')}) or vector(0)", "")],
                  w=4, h=4, steps=[(None, "green"), (1, "orange")],
                  description=f"Held, and busy less than {num(e.idle_threshold * 100)} % of the time now."),
            Panel("stat", "Cost", [(total.format(self.cluster("cluster:gpu_cost:sum")), "")], unit=money, w=4, h=4,
                  description="Over the time range: every GPU's energy at its cluster's price and its hours at "
                              "its model's."),
            Panel("stat", "Energy", [(total.format(self.cluster("cluster:gpu_energy:kwh")), "")], unit="kwatth",
                  w=4, h=4, description="Over the time range, from the GPUs' energy counters."),
        ]
        if e.carbon_intensity:
            panels.append(Panel("stat", "Carbon", [(total.format(self.cluster("cluster:gpu_carbon:grams")), "")],
                                unit="massg", w=4, h=4,
                                description="Over the time range, at each cluster's carbon intensity."))
        panels += [
            Panel("table", "Top idle allocations", [(
                f"topk({TOP_GPUS}, sum_over_time({self.cluster(idle)}[$__range]) * {hours} > 0)", "")],
                  unit="h", id=links.IDLE_ALLOCATIONS_PANEL, w=24, instant=True,
                  options={"sortBy": [{"displayName": "Value", "desc": True}]},
                  description="Hours over the time range each allocation (a pod's or job's GPU or MIG instance) "
                              "sat idle while held."),
        ]
        if self.model.teams:
            panels.append(Panel("timeseries", "Cost per team, hourly", [(
                hourly.format(by="team", series=self.cluster("team:gpu_cost:sum")), "{{team}}")], unit=money,
                description="What each team's GPUs cost in the hour before each point, held or not."))
        panels += [
            Panel("timeseries", "Cost per workload, hourly", [(
                hourly.format(by="namespace, hpc_job", series=self.cluster("workload:gpu_cost:sum")),
                "{{namespace}}{{hpc_job}}")], unit=money,
                  description="What each namespace or HPC job was charged in the hour before each point: the "
                              "GPUs it held, their hours and their share of energy."),
            Panel("timeseries", "GPU-hours allocated and used, hourly", [
                (hourly.format(by="cluster", series=self.cluster("workload:gpu_hours_allocated:sum")),
                 "{{cluster}} allocated"),
                (hourly.format(by="cluster", series=self.cluster("workload:gpu_hours_used:sum")),
                 "{{cluster}} used")], unit="h",
                  description="Used: allocated hours weighted by how busy each allocation was."),
            Panel("timeseries", "Energy per cluster, hourly",
                  [(hourly.format(by="cluster", series=self.cluster("cluster:gpu_energy:kwh")), "{{cluster}}")],
                  unit="kwatth"),
            Panel("timeseries", "Idle allocated GPUs per workload",
                  [(f"sum by (team, namespace, hpc_job) ({self.cluster('workload:gpus_idle:sum')})",
                    "{{team}} {{namespace}}{{hpc_job}}")]),
        ]
        return panels

    def _exporter_series(self, key: str) -> list[str]:
        return list(dict.fromkeys(e.profile.metric(key) for e in self.model.exporters if e.profile.serves(key)))

    def custom(self, panels) -> list[Panel]:
        return [Panel(p.type, p.title, [(p.expr, p.legend)], unit=p.unit, description=p.description or "",
                      steps=[(None, "green")] + [(s.value, s.color) for s in p.thresholds] if p.thresholds else None)
                for p in panels]


VARIABLES = {links.FLEET_OVERVIEW: ("cluster",), links.GPU_DETAIL: ("cluster", "host", "gpu"),
             links.HEALTH: ("cluster", "host", "gpu"), links.MONITORING: ("cluster", "host"),
             links.EFFICIENCY: ("cluster",)}
# Dashboards that read cluster-level series only, and so list clusters from one: the global tier has no other.
CLUSTER_SERIES = {links.FLEET_OVERVIEW: "cluster:gpus_expected:count"}


def _variables(model: FleetModel, names, cluster_series: str | None = None) -> list[core.Template]:
    metric = "gpu:present:bool"  # recorded for every GPU of every exporter kind
    h = model.prometheus.host_label
    chain = {"cluster": (cluster_series or metric, "cluster"),
             "host": (sel(metric, 'cluster=~"$cluster"'), h),
             "gpu": (sel(metric, 'cluster=~"$cluster"', f'{h}=~"$host"'), "gpu")}
    out = [core.Template(name="datasource", type="datasource", query="prometheus", label="Data source",
                         default=None)]
    for name in names:
        series, label = chain[name]
        out.append(core.Template(name=name, label=name.capitalize(), query=f"label_values({series}, {label})",
                                 dataSource=DATASOURCE, includeAll=True, multi=True, allValue=".*",
                                 refresh=2, sort=3))
    return out


def _variable(template: core.Template) -> dict:
    if template.type == "datasource":
        current = {"selected": True, "text": "Prometheus", "value": DATASOURCE_UID}
    else:
        current = {"selected": True, "text": "All", "value": "$__all"}
    return grafana_model.variable(_plain(template), current)


# Grafana's built-in annotation query (alert state changes, notes added by hand), as Grafana writes it.
BUILT_IN_ANNOTATIONS = {"name": "Annotations & Alerts", "builtIn": 1, "enable": True, "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"}}


def dashboard(model: FleetModel, name: str, uid: str, panels: list[Panel], variables, tags: list[str]) -> dict:
    fleet_tag = f"gpuobs-{model.name}"
    # Plain data: grafanalib's DashboardLink writes these fields too, in an order that would rewrite
    # every committed dashboard.
    dashboard_links = [{"title": "gpuobs dashboards", "type": "dashboards", "tags": [fleet_tag], "asDropdown": True,
                        "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
                        "tooltip": "", "url": ""}]
    built = core.Dashboard(title=name, uid=uid, tags=tags, timezone="browser", refresh="1m",
                           time=core.Time("now-6h", "now"), graphTooltip=1, editable=True,
                           description=f"Generated by gpuobs from {model.source}; do not edit: "
                                       "changes are lost when it is generated again.",
                           schemaVersion=grafana_model.SCHEMA_VERSION, panels=_layout(panels),
                           templating=core.Templating([_variable(v) for v in variables]), links=dashboard_links,
                           annotations=core.Annotations([BUILT_IN_ANNOTATIONS]))
    return grafana_model.dashboard(_plain(built))


def dashboards(model: FleetModel) -> dict[str, dict]:
    """{file name: dashboard} for the generated dashboards and the spec's own."""
    builder = Dashboards(model)
    grafana = model.grafana
    extra = grafana.panels if grafana else {}
    fleet_tag = f"gpuobs-{model.name}"
    out = {}
    for key in links.DASHBOARDS + ((links.EFFICIENCY,) if model.efficiency else ()):
        panels = getattr(builder, key.replace("-", "_"))() + builder.custom(extra.get(key, []))
        out[f"{key}.json"] = dashboard(model, links.dashboard_title(model.name, key), model.dashboard_uid(key),
                                       panels, _variables(model, VARIABLES[key], CLUSTER_SERIES.get(key)),
                                       ["gpuobs", fleet_tag])
    for custom in grafana.dashboards if grafana else []:
        out[links.custom_dashboard_file(custom.title)] = dashboard(
            model, custom.title, links.custom_dashboard_uid(model.name, custom.title, custom.uid),
            builder.custom(custom.panels),
            _variables(model, ("cluster", "host", "gpu")), ["gpuobs", fleet_tag, *custom.tags])
    return out


PROVISIONING_FOLDER = "grafana/provisioning"  # mounted at Grafana's /etc/grafana/provisioning
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/gpuobs"  # where the provider reads grafana/dashboards/


def dashboard_path(name: str) -> str:
    return f"grafana/dashboards/{name}"


def provisioning(model: FleetModel) -> dict[str, dict]:
    grafana = model.grafana
    url = grafana.prometheus_url if grafana else "http://prometheus:9090"
    folder = grafana.folder if grafana else "GPU fleet"
    return {
        f"{PROVISIONING_FOLDER}/datasources/gpuobs.yml": {"apiVersion": 1, "datasources": [{
            "name": "Prometheus", "type": "prometheus", "uid": DATASOURCE_UID, "access": "proxy", "url": url,
            "isDefault": True, "editable": False,
            "jsonData": {"timeInterval": model.prometheus.scrape_interval, "httpMethod": "POST"}}]},
        f"{PROVISIONING_FOLDER}/dashboards/gpuobs.yml": {"apiVersion": 1, "providers": [{
            "name": f"gpuobs-{model.name}", "folder": folder, "type": "file", "disableDeletion": False,
            "allowUiUpdates": False, "updateIntervalSeconds": 30,
            "options": {"path": DASHBOARDS_MOUNT, "foldersFromFilesStructure": False}}]},
    }


def generate(model: FleetModel) -> dict[str, object]:
    files: dict[str, object] = dict(provisioning(model))
    for name, document in dashboards(model).items():
        files[dashboard_path(name)] = document
    return files


def all_queries(document: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and variable query of a dashboard."""
    found = []
    for panel in document["panels"]:
        for target in panel["targets"]:
            found.append((f"{document['title']} / {panel['title']} / {target['refId']}", target["expr"]))
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"{document['title']} / ${variable['name']}", variable["query"]))
    return found

