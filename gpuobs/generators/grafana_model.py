"""From grafanalib's output to Grafana 11.6's dashboard model.

grafanalib builds the dashboard, its panels, targets, grid and variables, and gpuobs hands it
everything its constructors take (schema version, panels, variables, links, annotations, table
transformations). Whatever the arguments, its objects also write parts of Grafana 6-8's model,
which Grafana 11.6's schema (no additional properties, anywhere) rejects: this module rewrites
those parts and only those, and tests validate the result against Grafana 11.6's JSON schemas.
"""

from __future__ import annotations

import copy

SCHEMA_VERSION = 41  # Grafana 11.6

# The keys of grafanalib's output that gpuobs keeps, in the order dashboards are written. The others
# are Grafana 6-8 fields the schema rejects (the dashboard's `rows`, `style`, `hideControls`,
# `sharedCrosshair`, `__inputs`; a panel's `editable`, `error`, `height`, `span`, `minSpan`; a target's
# `query`, `target`, `metric`, `step`; a variable's `useTags` and tag queries), fields grafanalib
# leaves null, which the schema rejects too (`id`, `gnetId`, a panel's `repeat`, `interval`,
# `timeFrom`, `cacheTimeout`, a variable's `regex`), a target's `intervalFactor`, deprecated in
# Grafana 11, and interval variables' `auto*`. `timepicker` and `current` keep their place here and
# take gpuobs's values: see dashboard() and variable().
DASHBOARD_KEYS = ("uid", "title", "description", "tags", "timezone", "editable", "graphTooltip", "time",
                  "timepicker", "refresh", "schemaVersion", "version", "panels", "templating", "annotations",
                  "links")
PANEL_KEYS = ("type", "id", "title", "description", "transparent", "datasource", "gridPos", "links",
              "maxDataPoints", "transformations", "hideTimeOverride")
VARIABLE_KEYS = ("type", "name", "label", "hide", "query", "datasource", "current", "multi", "options", "refresh",
                 "sort", "includeAll", "allValue")
TARGET_KEYS = ("refId", "expr", "legendFormat", "instant", "range", "format", "datasource", "interval", "hide")

# grafanalib's TimePicker always writes `time_options`, which Grafana 11 dropped, and a null `nowDelay`.
TIMEPICKER = {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m", "1h"]}

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


def _keep(data: dict, keys) -> dict:
    """`keys` of grafanalib's output, in that order. grafanalib writes null for what is not set (the
    datasource variable's `datasource` and `allValue`); Grafana's schema wants a value or nothing."""
    return {k: data[k] for k in keys if data.get(k) is not None}


def target(data: dict) -> dict:
    """grafanalib's Target has no `range`. Grafana 11 reads `instant` and `range` as a pair (both set:
    both queries); written out, Grafana's query editor shows the query each target runs."""
    return _keep({**data, "range": not data["instant"]}, TARGET_KEYS)


def panel(data: dict, options: dict, field_defaults: dict) -> dict:
    """grafanalib's panel with complete options and field config. Its own are replaced, not mended:
    for every modern panel type they lack fields Grafana 11 requires and grafanalib takes no argument
    for (a legend's `showLegend`, a stat's `wideLayout`, a table's `frameIndex`), bar gauges carry
    Grafana 6's `fieldOptions`, heatmaps the Angular model, field config nulls."""
    kind = data["type"]
    out = _keep(data, PANEL_KEYS)
    out["targets"] = [target(t) for t in data["targets"]]
    out["options"] = merge(OPTIONS[kind], options)
    defaults = copy.deepcopy(field_defaults)
    if kind in CUSTOM:
        defaults["custom"] = merge(CUSTOM[kind], defaults.get("custom", {}))
    # No overrides: the 11.6 schema types matcher options as objects, while byName/byRegexp take
    # strings, so any name-matching override fails validation. Panels are designed without them.
    out["fieldConfig"] = {"defaults": defaults, "overrides": []}
    return out


def variable(data: dict, current: dict) -> dict:
    """grafanalib's variable showing `current`: its own current value has `tags`, which the schema
    rejects, and text that can only repeat the value."""
    return {**_keep(data, VARIABLE_KEYS), "current": current}


def dashboard(data: dict) -> dict:
    return {**_keep(data, DASHBOARD_KEYS), "timepicker": TIMEPICKER}
