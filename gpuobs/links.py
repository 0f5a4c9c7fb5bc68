"""Where alerts point in Grafana: the generated dashboards and the fixed ids of their panels.

Shared by the rules generator (dashboard_url annotations) and the Grafana generator, which
gives these panels exactly these ids, so a link survives regeneration.
"""

from __future__ import annotations

FLEET_OVERVIEW = "fleet-overview"
GPU_DETAIL = "gpu-detail"
HEALTH = "health"
MONITORING = "monitoring"
DASHBOARDS = (FLEET_OVERVIEW, GPU_DETAIL, HEALTH, MONITORING)
TITLES = {FLEET_OVERVIEW: "GPU fleet overview", GPU_DETAIL: "GPU host and GPU detail",
          HEALTH: "GPU health and prediction", MONITORING: "GPU monitoring: the monitoring itself"}


def dashboard_title(fleet: str, key: str) -> str:
    return f"{TITLES[key]} ({fleet})"


def dashboard_uid(fleet: str, key: str) -> str:
    """Stable Grafana uid (at most 40 characters), so links survive regeneration."""
    return f"gpuobs-{fleet}-{key}"[:40]


def slug(title: str) -> str:
    """A custom dashboard's key: its title in lower case, other characters as '-'."""
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:24]

# Panel ids of the GPU detail and health dashboards that alerts open.
TEMPERATURE_PANEL = 2
POWER_PANEL = 3
MEMORY_PANEL = 5
THROTTLE_PANEL = 7
ECC_PANEL = 8
XID_PANEL = 9
REMAP_PANEL = 10
INTERCONNECT_PANEL = 11
HEALTH_SCORE_PANEL = 1
GPUS_REPORTING_PANEL = 1
BLIND_SPOTS_PANEL = 2  # monitoring dashboard

# alert family -> (dashboard, panel id) of the panel that shows the alert's metric
ALERT_PANELS = {
    "thermal": (GPU_DETAIL, TEMPERATURE_PANEL),
    "power": (GPU_DETAIL, POWER_PANEL),
    "memory": (GPU_DETAIL, MEMORY_PANEL),
    "throttle": (GPU_DETAIL, THROTTLE_PANEL),
    "ecc": (GPU_DETAIL, ECC_PANEL),
    "xid": (GPU_DETAIL, XID_PANEL),
    "memory_repair": (GPU_DETAIL, REMAP_PANEL),
    "interconnect": (GPU_DETAIL, INTERCONNECT_PANEL),
    "health": (HEALTH, HEALTH_SCORE_PANEL),
    "inventory": (GPU_DETAIL, GPUS_REPORTING_PANEL),
    "exporter": (MONITORING, 1),
    "coverage": (MONITORING, BLIND_SPOTS_PANEL),
}
