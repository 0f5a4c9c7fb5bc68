"""Grafana dashboards (built with grafanalib) and provisioning files.

Four dashboards per fleet, plus the spec's own: fleet overview, host/GPU detail, health and
prediction, monitoring the monitoring. Every query reads recording rules or catalog names; uids
derive from the fleet's name so links and alert URLs survive regeneration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from grafanalib import core
from grafanalib._gen import DashboardEncoder

from gpuobs import links
from gpuobs.generators import grafana_model
from gpuobs.generators.rules import TOP_GPUS
from gpuobs.model import FleetModel
from gpuobs.promql import sel

DATASOURCE_UID = "gpuobs-prometheus"
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


def _plain(built) -> dict:
    """grafanalib's objects as plain JSON data."""
    return json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder))


def _thresholds(steps) -> dict:
    """Grafana treats the first step as the base whatever its value and writes it as null; the
    dashboard schema wants a number, so the base gets one below the next step."""
    steps = steps or [(None, "green")]
    later = [v for v, _ in steps[1:]]
    base = min(0, min(later) - 1) if later else 0
    return {"mode": "absolute", "steps": [{"color": c, "value": base if v is None else v} for v, c in steps]}


DASHED = {"custom": {"lineStyle": {"fill": "dash", "dash": [10, 10]}}}


def _build_panel(panel: Panel, grid: core.GridPos) -> dict:
    table = panel.type == "table"
    targets = [core.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE,
                           instant=panel.instant, format=panel.format or ("table" if table else "time_series"))
               for i, (expr, legend) in enumerate(panel.queries)]
    built = PANEL_CLASSES[panel.type](title=panel.title, description=panel.description, targets=targets,
                                      gridPos=grid, id=panel.id, dataSource=DATASOURCE)
    data = _plain(built)
    for target in data["targets"]:
        target["range"] = not panel.instant
    defaults = grafana_model.merge({"unit": panel.unit, "thresholds": _thresholds(panel.steps),
                                    "color": {"mode": "thresholds" if panel.steps else "palette-classic"}},
                                   panel.defaults)
    return grafana_model.panel(data, panel.options, defaults)


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
        # Raw exporter series shown as such read the first setup's names; rules hide the rest.
        self.p = model.exporters[0].profile
        self.h = model.prometheus.host_label

    # -- selectors --------------------------------------------------------------------------
    def cluster(self, metric: str) -> str:
        return sel(metric, 'cluster=~"$cluster"')

    def host(self, metric: str) -> str:
        return sel(metric, 'cluster=~"$cluster"', f'{self.h}=~"$host"')

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
        p = self.p.metric
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
                  [(self.gpu("gpu:temperature:celsius", f'modelName="{gpu.nvml_name}"'), legend)],
                  unit="celsius", w=12, steps=steps, defaults=drawn)
            for gpu, steps in per_model.items()]
        on_off = {"mappings": [{"type": "value", "options": {"0": {"text": "off", "color": "green"},
                                                             "1": {"text": "active", "color": "red"}}}]}
        return [
            Panel("stat", "GPUs reporting on the host",
                  [(self.host("host:gpus:count"), "{{" + self.h + "}} reporting"),
                   (f"sum by (cluster, {self.h}) ({self.host(p('inventory_expected_gpus'))})",
                    "{{" + self.h + "}} expected")],
                  id=links.GPUS_REPORTING_PANEL, w=6, h=8),
            Panel("timeseries", "Temperature", [
                (self.gpu("gpu:temperature:celsius"), f"{legend} ({{{{modelName}}}})"),
                (self.gpu("gpu:temperature_warning_threshold:celsius"), f"{legend} warning threshold"),
                (self.gpu("gpu:temperature_critical_threshold:celsius"), f"{legend} critical threshold")],
                unit="celsius", id=links.TEMPERATURE_PANEL, w=9, steps=shared, defaults=drawn if shared else {},
                description="Per GPU, with each GPU's own warning and critical thresholds (its reported "
                            "limits, else its model's)."),
            Panel("timeseries", "Power and its enforced limit", [
                (self.gpu("gpu:power_usage:watts"), legend),
                (self.gpu("gpu:power_limit:watts"), f"{legend} limit")],
                unit="watt", id=links.POWER_PANEL, w=9),
            Panel("timeseries", "Utilization", [
                (self.gpu("gpu:utilization:ratio"), legend),
                (self.gpu(p("tensor_active")), f"{legend} tensor pipes")],
                unit="percentunit", w=8, defaults={"min": 0, "max": 1}),
            Panel("timeseries", "Framebuffer used", [
                (self.gpu("gpu:framebuffer_used:ratio"), f"{legend} {{{{GPU_I_PROFILE}}}}")],
                unit="percentunit", id=links.MEMORY_PANEL, w=8, defaults={"min": 0, "max": 1}),
            Panel("timeseries", "SM and memory clocks", [
                (self.gpu(p("sm_clock")), f"{legend} SM"), (self.gpu(p("mem_clock")), f"{legend} memory")],
                unit="rotmhz", w=8),
            Panel("state-timeline", "Throttle reasons",
                  [(self.gpu(p("clock_event_active"), 'reason!="gpu_idle"'), f"{legend} {{{{reason}}}}")],
                  id=links.THROTTLE_PANEL, w=24, h=10, defaults=on_off,
                  steps=[(None, "green"), (1, "red")],
                  description="Clock event reasons; hw_slowdown, hw_thermal and hw_power_brake raise "
                              "GPUThrottling, power_cap under load is normal."),
            Panel("timeseries", "ECC errors (5m)", [
                (f"increase({self.gpu(p('ecc_sbe_volatile'))}[5m])", f"{legend} correctable"),
                (f"increase({self.gpu(p('ecc_dbe_volatile'))}[5m])", f"{legend} uncorrectable")],
                id=links.ECC_PANEL, w=8),
            Panel("timeseries", "XID events (5m)", [
                (f"increase({self.gpu(p('xid_errors'))}[5m])", f"{legend} XID {{{{xid}}}}"),
                (self.gpu(p("xid_last")), f"{legend} last XID (dcgm-exporter)")],
                id=links.XID_PANEL, w=8, defaults={"custom": {"drawStyle": "bars", "fillOpacity": 80}}),
            Panel("timeseries", "Row remapping", [
                (self.gpu(p("correctable_remapped_rows")), f"{legend} correctable rows"),
                (self.gpu(p("uncorrectable_remapped_rows")), f"{legend} uncorrectable rows"),
                (self.gpu(p("row_remap_pending")), f"{legend} pending"),
                (self.gpu(p("row_remap_failure")), f"{legend} failed")],
                id=links.REMAP_PANEL, w=8),
            Panel("timeseries", "NVLink and PCIe errors (5m)", [
                (self.gpu("gpu:nvlink_errors:increase5m"), f"{legend} NVLink"),
                (f"increase({self.gpu(p('pcie_replay'))}[5m])", f"{legend} PCIe replays")],
                id=links.INTERCONNECT_PANEL, w=12),
            Panel("timeseries", "PCIe throughput", [
                (self.gpu(p("pcie_tx_bytes")), f"{legend} tx"), (self.gpu(p("pcie_rx_bytes")), f"{legend} rx")],
                unit="Bps", w=12),
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
            Panel("timeseries", "Temperature z-score (1h)", [(self.gpu("gpu:temperature:zscore_1h"), legend)], w=8,
                  steps=[(None, "green"), (3, "red")],
                  description="Standard deviations from the GPU's own last hour."),
            Panel("timeseries", "Power z-score (1h)", [(self.gpu("gpu:power_usage:zscore_1h"), legend)], w=8,
                  steps=[(None, "green"), (3, "red")]),
            Panel("timeseries", "Time to critical temperature",
                  [(self.gpu("gpu:temperature:seconds_to_critical"), legend)], unit="s", w=8,
                  description="At the last 10 minutes' rate of rise; absent while the GPU cools."),
            Panel("timeseries", "Temperature, measured", [(self.gpu("gpu:temperature:celsius"), legend)],
                  unit="celsius", w=12),
            Panel("timeseries", "Temperature forecast, 15 minutes ahead", [
                (f"predict_linear({self.gpu('gpu:temperature:celsius')}[30m], 900)", f"{legend} forecast"),
                (self.gpu("gpu:temperature_critical_threshold:celsius"), f"{legend} critical threshold")],
                unit="celsius", w=12, defaults=DASHED,
                description="Dashed, beside the measured panel: where the last 30 minutes' trend puts each "
                            "GPU in 15 minutes, against its critical threshold."),
        ]

    def monitoring(self) -> list[Panel]:
        p = self.p.metric
        up_mappings = {"mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                                  "1": {"text": "up", "color": "green"}}}]}
        return [
            Panel("state-timeline", "Scrape targets", [("up", "{{job}} {{instance}}")], id=1, w=24, h=8,
                  defaults=up_mappings, steps=[(None, "red"), (1, "green")]),
            Panel("timeseries", "Scrape duration", [("scrape_duration_seconds", "{{job}} {{instance}}")], unit="s",
                  w=12),
            Panel("timeseries", "Samples per scrape", [("scrape_samples_scraped", "{{job}} {{instance}}")], w=12),
            Panel("timeseries", "Rule group evaluation time",
                  [("prometheus_rule_group_last_duration_seconds", "{{rule_group}}")], unit="s", w=12),
            Panel("timeseries", "Rule evaluation failures (5m)",
                  [("increase(prometheus_rule_evaluation_failures_total[5m])", "{{rule_group}}")], w=12),
            Panel("timeseries", "GPU exporter collection time",
                  [(p("exporter_collection_duration"), "{{instance}}")], unit="s", w=8),
            Panel("timeseries", "GPU exporter read errors (5m)",
                  [(f"sum by (instance, field) (increase({p('exporter_collection_errors')}[5m]))",
                    "{{instance}} {{field}}")], w=8),
            Panel("stat", "Since the last good collection",
                  [(f"time() - {p('exporter_last_success')}", "{{instance}}")], unit="s", w=8,
                  steps=[(None, "green"), (60, "red")]),
            Panel("timeseries", "Alertmanager notifications", [
                ("sum by (integration) (rate(alertmanager_notifications_total[5m]))", "{{integration}} sent"),
                ("sum by (integration) (rate(alertmanager_notifications_failed_total[5m]))",
                 "{{integration}} failed")], unit="ops", w=12),
            Panel("timeseries", "Alerts Prometheus sent", [
                ("rate(prometheus_notifications_sent_total[5m])", "{{alertmanager}} sent"),
                ("rate(prometheus_notifications_errors_total[5m])", "{{alertmanager}} errors"),
                ("rate(prometheus_notifications_dropped_total[5m])", "dropped")], unit="ops", w=12),
        ]

    def custom(self, panels) -> list[Panel]:
        return [Panel(p.type, p.title, [(p.expr, p.legend)], unit=p.unit, description=p.description or "",
                      steps=[(None, "green")] + [(s.value, s.color) for s in p.thresholds] if p.thresholds else None)
                for p in panels]


VARIABLES = {links.FLEET_OVERVIEW: ("cluster",), links.GPU_DETAIL: ("cluster", "host", "gpu"),
             links.HEALTH: ("cluster", "host", "gpu"), links.MONITORING: ("cluster", "host")}
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


# Tables list GPUs: the scrape's bookkeeping columns only take room.
TABLE_TRANSFORMATIONS = [{"id": "organize", "options": {"excludeByName": {"Time": True, "job": True,
                                                                          "instance": True}}}]


def dashboard(model: FleetModel, name: str, uid: str, panels: list[Panel], variables, tags: list[str]) -> dict:
    built = core.Dashboard(title=name, uid=uid, tags=tags, timezone="browser", refresh="1m",
                           time=core.Time("now-6h", "now"), graphTooltip=1, editable=True,
                           description=f"Generated by gpuobs from {model.source}; do not edit: "
                                       "changes are lost when it is generated again.")
    data = _plain(built)
    rendered = _layout(panels)
    for panel in rendered:
        panel["transformations"] = TABLE_TRANSFORMATIONS if panel["type"] == "table" else []
    fleet_tag = f"gpuobs-{model.name}"
    dashboard_links = [{"title": "gpuobs dashboards", "type": "dashboards", "tags": [fleet_tag], "asDropdown": True,
                        "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
                        "tooltip": "", "url": ""}]
    return grafana_model.dashboard(data, rendered, [_variable(v) for v in variables], dashboard_links)


def dashboards(model: FleetModel) -> dict[str, dict]:
    """{file name: dashboard} for the generated dashboards and the spec's own."""
    builder = Dashboards(model)
    grafana = model.grafana
    extra = grafana.panels if grafana else {}
    fleet_tag = f"gpuobs-{model.name}"
    out = {}
    for key in links.DASHBOARDS:
        panels = getattr(builder, key.replace("-", "_"))() + builder.custom(extra.get(key, []))
        out[f"{key}.json"] = dashboard(model, links.dashboard_title(model.name, key), model.dashboard_uid(key),
                                       panels, _variables(model, VARIABLES[key], CLUSTER_SERIES.get(key)),
                                       ["gpuobs", fleet_tag])
    for custom in grafana.dashboards if grafana else []:
        uid = custom.uid or model.dashboard_uid(links.slug(custom.title))
        out[f"custom-{links.slug(custom.title)}.json"] = dashboard(
            model, custom.title, uid, builder.custom(custom.panels),
            _variables(model, ("cluster", "host", "gpu")), ["gpuobs", fleet_tag, *custom.tags])
    return out


def provisioning(model: FleetModel) -> dict[str, dict]:
    grafana = model.grafana
    url = grafana.prometheus_url if grafana else "http://prometheus:9090"
    folder = grafana.folder if grafana else "GPU fleet"
    return {
        "grafana/provisioning/datasources/gpuobs.yml": {"apiVersion": 1, "datasources": [{
            "name": "Prometheus", "type": "prometheus", "uid": DATASOURCE_UID, "access": "proxy", "url": url,
            "isDefault": True, "editable": False,
            "jsonData": {"timeInterval": model.prometheus.scrape_interval, "httpMethod": "POST"}}]},
        "grafana/provisioning/dashboards/gpuobs.yml": {"apiVersion": 1, "providers": [{
            "name": f"gpuobs-{model.name}", "folder": folder, "type": "file", "disableDeletion": False,
            "allowUiUpdates": False, "updateIntervalSeconds": 30,
            "options": {"path": "/var/lib/grafana/dashboards/gpuobs", "foldersFromFilesStructure": False}}]},
    }


def generate(model: FleetModel) -> dict[str, object]:
    files: dict[str, object] = dict(provisioning(model))
    for name, document in dashboards(model).items():
        files[f"grafana/dashboards/{name}"] = document
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

