"""Where alerts point in Grafana: the generated dashboards and the fixed ids of their panels.

Shared by the alert catalog (each alert names the panel its dashboard_url opens) and the Grafana
generator, which gives these panels exactly these ids, so a link survives regeneration.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

FLEET_OVERVIEW = "fleet-overview"
GPU_DETAIL = "gpu-detail"
HEALTH = "health"
MONITORING = "monitoring"
EFFICIENCY = "efficiency"  # only for a spec with an efficiency section
DASHBOARDS = (FLEET_OVERVIEW, GPU_DETAIL, HEALTH, MONITORING)
TITLES = {FLEET_OVERVIEW: "GPU fleet overview", GPU_DETAIL: "GPU host and GPU detail",
          HEALTH: "GPU health and prediction", MONITORING: "GPU monitoring: the monitoring itself",
          EFFICIENCY: "GPU efficiency and cost"}


def dashboard_title(fleet: str, key: str) -> str:
    return f"{TITLES[key]} ({fleet})"


UID_LENGTH = 40  # Grafana's limit
SLUG_LENGTH = 24
_DIGEST_LENGTH = 6
_UID = re.compile(r"[A-Za-z0-9_-]+")


def dashboard_uid(fleet: str, key: str) -> str:
    """Stable Grafana uid, so links survive regeneration: gpuobs-<fleet>-<key> where that is a valid
    uid (at most 40 of A-Z, a-z, 0-9, '_', '-'); else cut, with a digest of the whole that keeps
    uids of long fleet names apart."""
    uid = f"gpuobs-{fleet}-{key}"
    if len(uid) <= UID_LENGTH and _UID.fullmatch(uid):
        return uid
    return _with_digest(re.sub(r"[^A-Za-z0-9_-]", "-", uid), UID_LENGTH, uid)


def slug(title: str) -> str:
    """A custom dashboard's key (in its file, ConfigMap and uid): its title in lower case, other
    characters as '-'; transliterated to ASCII and cut to 24 characters where needed, then with a
    digest of the title, so two titles alike in their first characters stay apart."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    plain = "".join(c if c.isalnum() else "-" for c in ascii_title.lower()).strip("-")
    if plain and len(plain) <= SLUG_LENGTH and ascii_title == title:
        return plain
    return _with_digest(plain, SLUG_LENGTH, title)


def custom_dashboard_uid(fleet: str, title: str, uid: str | None) -> str:
    return uid or dashboard_uid(fleet, slug(title))


def custom_dashboard_file(title: str) -> str:
    return f"custom-{slug(title)}.json"


def _with_digest(text: str, limit: int, whole: str) -> str:
    """`text` cut to fit `limit` together with '-' and a short digest of `whole`."""
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]
    head = text[:limit - _DIGEST_LENGTH - 1].strip("-")
    return f"{head}-{digest}" if head else digest

# Panel ids that alerts open (each alert names its own, gpuobs/alerts/).
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
SCRAPE_TARGETS_PANEL = 1  # monitoring dashboard
BLIND_SPOTS_PANEL = 2  # monitoring dashboard
IDLE_ALLOCATIONS_PANEL = 6  # efficiency dashboard: after its four or five stats, whichever it has
