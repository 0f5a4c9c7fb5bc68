"""Checks of the grafana section that span dashboards: titles and uids must not collide, neither
with each other nor with the dashboards gpuobs generates."""

from __future__ import annotations

from gpuobs import links
from gpuobs.errors import Problem
from gpuobs.spec.schema import Fleet


def check_grafana(fleet: Fleet, fleet_name: str) -> list[Problem]:
    if fleet.grafana is None:
        return []
    problems = []
    titles = {links.dashboard_title(fleet_name, key): f"the generated {key} dashboard" for key in links.DASHBOARDS}
    uids = {links.dashboard_uid(fleet_name, key): f"the generated {key} dashboard" for key in links.DASHBOARDS}
    for i, dashboard in enumerate(fleet.grafana.dashboards):
        path = f"grafana.dashboards[{i}]"
        if dashboard.title in titles:
            problems.append(Problem(f"{path}.title", f"title '{dashboard.title}' is also {titles[dashboard.title]}"))
        titles.setdefault(dashboard.title, f"the title of grafana.dashboards[{i}]")
        uid = dashboard.uid or links.dashboard_uid(fleet_name, links.slug(dashboard.title))
        if uid in uids:
            where = f"{path}.uid" if dashboard.uid else f"{path}.title"
            problems.append(Problem(where, f"dashboard uid '{uid}' is also {uids[uid]}; set a distinct uid"))
        uids.setdefault(uid, f"the uid of grafana.dashboards[{i}]")
    return problems
