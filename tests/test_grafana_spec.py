"""The grafana section: custom panels and dashboards, refused with a path when they are wrong."""

import pytest
import yaml

from conftest import MINIMAL_SPEC, assert_one_problem
from gpuobs.generate import load_model, render

PANEL = {"title": "Energy", "expr": 'increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=~"$gpu"}[$__rate_interval])',
         "unit": "kwatth"}
BASE = {**MINIMAL_SPEC, "name": "g", "grafana": {
    "panels": {"gpu-detail": [PANEL]},
    "dashboards": [{"title": "Capacity", "panels": [{**PANEL, "type": "stat",
                                                     "thresholds": [{"value": 1, "color": "red"}]}]}]}}


def grafana(data):
    return data["grafana"]


CASES = [
    ("promql-that-does-not-parse", lambda d: grafana(d)["panels"]["gpu-detail"][0].update(expr="sum(rate(x[5m])"),
     "grafana.panels.gpu-detail[0].expr", "does not parse as PromQL: unclosed left parenthesis"),
    ("unknown-unit", lambda d: grafana(d)["dashboards"][0]["panels"][0].update(unit="kelvins"),
     "grafana.dashboards[0].panels[0].unit", "unknown Grafana unit 'kelvins'; known: none, short, percent"),
    ("angular-panel-type", lambda d: grafana(d)["dashboards"][0]["panels"][0].update(type="graph"),
     "grafana.dashboards[0].panels[0].type", "must be 'timeseries', 'stat', 'gauge'"),
    ("unknown-dashboard-to-extend", lambda d: grafana(d)["panels"].update(overview=[PANEL]),
     "grafana.panels.overview", "unknown key 'overview'; did you mean 'fleet-overview'?"),
    ("unknown-dashboard-to-extend-far-from-any", lambda d: grafana(d)["panels"].update(power=[PANEL]),
     "grafana.panels.power", "unknown key 'power'; allowed: fleet-overview, gpu-detail, health, monitoring"),
    ("duplicate-custom-titles", lambda d: grafana(d)["dashboards"].append(
        {"title": "Capacity", "uid": "other", "panels": [PANEL]}),
     "grafana.dashboards[1].title", "title 'Capacity' is also the title of grafana.dashboards[0]"),
    ("title-of-a-generated-dashboard", lambda d: grafana(d)["dashboards"][0].update(
        title="GPU fleet overview (g)"),
     "grafana.dashboards[0].title", "is also the generated fleet-overview dashboard"),
    ("duplicate-uids", lambda d: (grafana(d)["dashboards"][0].update(uid="cap"), grafana(d)["dashboards"].append(
        {"title": "Other", "uid": "cap", "panels": [PANEL]})),
     "grafana.dashboards[1].uid", "dashboard uid 'cap' is also the uid of grafana.dashboards[0]"),
    ("uid-of-a-generated-dashboard", lambda d: grafana(d)["dashboards"][0].update(uid="gpuobs-g-health"),
     "grafana.dashboards[0].uid", "is also the generated health dashboard"),
    ("title-whose-uid-collides", lambda d: grafana(d)["dashboards"][0].update(title="Health"),
     "grafana.dashboards[0].title", "dashboard uid 'gpuobs-g-health' is also the generated health dashboard"),
    ("uid-too-long", lambda d: grafana(d)["dashboards"][0].update(uid="x" * 41),
     "grafana.dashboards[0].uid", "does not have the required form ^[A-Za-z0-9_-]{1,40}$"),
    ("bad-colour", lambda d: grafana(d)["dashboards"][0]["panels"][0].update(
        thresholds=[{"value": 1, "color": "reddish"}]),
     "grafana.dashboards[0].panels[0].thresholds[0].color", "'reddish' is not a Grafana colour"),
    ("dashboard-without-panels", lambda d: grafana(d)["dashboards"][0].update(panels=[]),
     "grafana.dashboards[0].panels", "must list at least one item"),
]


def test_base_generates_the_custom_panel_and_dashboard(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(BASE))
    files = render(load_model(path))
    assert "grafana/dashboards/custom-capacity.json" in files
    assert '"title": "Energy"' in files["grafana/dashboards/gpu-detail.json"]


@pytest.mark.parametrize("name, change, path, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_grafana_section(tmp_path, name, change, path, fragment):
    assert_one_problem(tmp_path, BASE, change, path, fragment)
