"""From grafanalib 0.7.1's output to Grafana 11.6's dashboard model.

grafanalib builds the dashboard, its panels, targets, grid and variables, but writes the model
of Grafana 6-8: `schemaVersion: 12`, top-level `rows`/`style`/`hideControls`/`sharedCrosshair`,
nulls where Grafana 11 expects a value or nothing, panel options that lack fields Grafana 11
requires (every modern panel type), Grafana 6 `fieldOptions` on bar gauges and the Angular
heatmap model. This module keeps what Grafana 11 knows and supplies complete options per panel
type; tests validate the result against Grafana 11.6's JSON schemas.
"""

from __future__ import annotations

import copy

SCHEMA_VERSION = 41  # Grafana 11.6

DASHBOARD_KEYS = ("uid", "title", "description", "tags", "timezone", "editable", "graphTooltip", "time",
                  "timepicker", "fiscalYearStartMonth", "liveNow", "weekStart", "refresh", "schemaVersion",
                  "version", "panels", "templating", "annotations", "links")
PANEL_KEYS = ("type", "id", "title", "description", "transparent", "datasource", "gridPos", "links", "repeat",
              "repeatDirection", "maxPerRow", "maxDataPoints", "transformations", "interval", "timeFrom",
              "timeShift", "hideTimeOverride", "targets", "options", "fieldConfig")
VARIABLE_KEYS = ("type", "name", "label", "hide", "skipUrlSync", "description", "query", "datasource", "current",
                 "multi", "options", "refresh", "sort", "includeAll", "allValue", "regex")
TARGET_KEYS = ("refId", "expr", "legendFormat", "instant", "range", "format", "datasource", "interval", "hide")

_REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_LEGEND = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}

# Grafana 11.6's defaults for each panel type's options: every field its schema requires.
OPTIONS = {
    "timeseries": {"legend": _LEGEND, "tooltip": {"mode": "multi", "sort": "desc"}},
    "stat": {"graphMode": "area", "colorMode": "value", "justifyMode": "auto", "textMode": "auto",
             "wideLayout": True, "showPercentChange": False, "percentChangeColorMode": "standard",
             "orientation": "auto", "reduceOptions": _REDUCE},
    "gauge": {"showThresholdLabels": False, "showThresholdMarkers": True, "sizing": "auto", "minVizWidth": 75,
              "minVizHeight": 75, "orientation": "auto", "reduceOptions": _REDUCE},
    "bargauge": {"displayMode": "gradient", "valueMode": "color", "namePlacement": "auto", "showUnfilled": True,
                 "sizing": "auto", "minVizWidth": 8, "minVizHeight": 16, "maxVizHeight": 300,
                 "legend": {**_LEGEND, "showLegend": False}, "orientation": "horizontal", "reduceOptions": _REDUCE},
    "table": {"frameIndex": 0, "showHeader": True, "cellHeight": "sm",
              "footer": {"show": False, "reducer": ["sum"], "fields": [], "countRows": False}},
    "state-timeline": {"showValue": "never", "rowHeight": 0.9, "mergeValues": True, "alignValue": "left",
                       "legend": _LEGEND, "tooltip": {"mode": "single", "sort": "none"}},
    "heatmap": {"calculate": True, "cellGap": 1, "showValue": "never",
                "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "scale": "exponential",
                          "exponent": 0.5, "steps": 64, "reverse": False},
                "yAxis": {"axisPlacement": "left", "reverse": False}, "rowsFrame": {"layout": "auto"},
                "legend": {"show": True}, "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
                "exemplars": {"color": "rgba(255,0,255,0.7)"}},
}

# Field config `custom` defaults of the panel types that have one.
CUSTOM = {
    "timeseries": {"drawStyle": "line", "lineInterpolation": "linear", "lineWidth": 1, "fillOpacity": 10,
                   "gradientMode": "none", "showPoints": "never", "pointSize": 4, "spanNulls": False,
                   "axisPlacement": "auto", "axisBorderShow": False, "stacking": {"mode": "none", "group": "A"},
                   "thresholdsStyle": {"mode": "off"}},
    "state-timeline": {"lineWidth": 0, "fillOpacity": 80},
    "heatmap": {"scaleDistribution": {"type": "linear"},
                "hideFrom": {"legend": False, "tooltip": False, "viz": False}},
    # cellOptions stays Grafana's default: {"type": "auto"} matches several of the schema's oneOf branches.
    "table": {"align": "auto", "inspect": False},
}


def merge(base: dict, override: dict) -> dict:
    """Deep merge: `override` wins, nested dicts merge."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _pick(data: dict, keys) -> dict:
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def target(data: dict) -> dict:
    return _pick(data, TARGET_KEYS)


def panel(data: dict, options: dict, field_defaults: dict) -> dict:
    """grafanalib's panel, reduced to Grafana 11's keys, with complete options and field config."""
    kind = data["type"]
    out = _pick(data, PANEL_KEYS)
    out["targets"] = [target(t) for t in data.get("targets", [])]
    out["options"] = merge(OPTIONS[kind], options)
    defaults = copy.deepcopy(field_defaults)
    if kind in CUSTOM:
        defaults["custom"] = merge(CUSTOM[kind], defaults.get("custom", {}))
    # No overrides: the 11.6 schema types matcher options as objects, while byName/byRegexp take
    # strings, so any name-matching override fails validation. Panels are designed without them.
    out["fieldConfig"] = {"defaults": defaults, "overrides": []}
    for key in ("links", "transformations"):
        out.setdefault(key, [])
    return out


def variable(data: dict, current: dict) -> dict:
    out = _pick(data, VARIABLE_KEYS)
    out["current"] = current
    if not out.get("allValue"):
        out.pop("allValue", None)
    return out


def dashboard(data: dict, panels: list[dict], variables: list[dict], links: list[dict]) -> dict:
    out = _pick(data, DASHBOARD_KEYS)
    out["schemaVersion"] = SCHEMA_VERSION
    out["panels"] = panels
    out["templating"] = {"list": variables}
    out["links"] = links
    out["timepicker"] = {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m", "1h"]}
    out["annotations"] = {"list": [{
        "name": "Annotations & Alerts", "builtIn": 1, "enable": True, "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    }]}
    return out
