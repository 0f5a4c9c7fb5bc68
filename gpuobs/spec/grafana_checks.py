"""Checks of the grafana section that span dashboards: titles, uids and file names must not collide,
neither with each other nor with the dashboards gpuobs generates."""

from __future__ import annotations

from gpuobs import links
from gpuobs.errors import Problem, shown
from gpuobs.spec.schema import Fleet


def check_grafana(fleet: Fleet, fleet_name: str) -> list[Problem]:
    if fleet.grafana is None:
        return []
    problems = []
    generated = links.DASHBOARDS + ((links.EFFICIENCY,) if fleet.efficiency else ())
    titles = {links.dashboard_title(fleet_name, key): f"the generated {key} dashboard" for key in generated}
    uids = {links.dashboard_uid(fleet_name, key): f"the generated {key} dashboard" for key in generated}
    files: dict[str, str] = {}
    for i, dashboard in enumerate(fleet.grafana.dashboards):
        path = f"grafana.dashboards[{i}]"
        if dashboard.title in titles:
            problems.append(Problem(f"{path}.title", f"title {shown(dashboard.title)} is also "
                                    f"{titles[dashboard.title]}"))
        titles.setdefault(dashboard.title, f"the title of grafana.dashboards[{i}]")
        file = links.custom_dashboard_file(dashboard.title)
        same_file = files.setdefault(file, dashboard.title) != dashboard.title
        if same_file:  # then the uid from the title is the same too: one problem, this one
            problems.append(Problem(f"{path}.title", f"this title and {shown(files[file])} both name the "
                                    f"dashboard's file {file}; change one title"))
        uid = links.custom_dashboard_uid(fleet_name, dashboard.title, dashboard.uid)
        if uid in uids and not (same_file and not dashboard.uid):
            where = f"{path}.uid" if dashboard.uid else f"{path}.title"
            problems.append(Problem(where, f"dashboard uid '{uid}' is also {uids[uid]}; set a distinct uid"))
        uids.setdefault(uid, f"the uid of grafana.dashboards[{i}]")
    return problems
