"""Scenario files: faults started and stopped at given simulated times.

    events:
      - at: 2m                 # simulated time since the simulator started
        start: thermal-runaway
        host: gpu-node-01      # optional with a single host
        gpu: 3                 # optional: all GPUs of the host
        params: {rate_c_per_min: 20}
        duration: 5m           # optional: stops by itself
      - at: 10m
        stop: thermal-runaway  # every matching active fault
        host: gpu-node-01

Times are seconds (a number) or Prometheus-style durations (90s, 5m, 1h30m).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .faults import FAULTS, FaultError, resolve_params

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_KEYS = {"at", "start", "stop", "host", "gpu", "params", "duration"}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    at: float
    action: str  # "start" or "stop"
    fault: str
    host: str | None = None
    gpu: int | None = None
    params: dict = field(default_factory=dict)
    duration: float | None = None


def seconds(value) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) and value else None
    if not match or not any(match.groups()):
        raise ScenarioError(f"'{value}' is not a duration; use seconds or e.g. 90s, 5m, 1h30m")
    h, m, s, ms = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def parse(data, source: str = "scenario") -> list[Event]:
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ScenarioError(f"{source}: expected a mapping with an `events` list")
    events = []
    for i, item in enumerate(data["events"]):
        where = f"{source}: events[{i}]"
        try:
            events.append(_event(item))
        except (ScenarioError, FaultError) as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    return sorted(events, key=lambda e: e.at)


def _event(item) -> Event:
    if not isinstance(item, dict):
        raise ScenarioError("an event is a mapping")
    unknown = set(item) - _KEYS
    if unknown:
        raise ScenarioError(f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    if ("start" in item) == ("stop" in item):
        raise ScenarioError("give exactly one of start: or stop:")
    action = "start" if "start" in item else "stop"
    name = item[action]
    if name not in FAULTS:
        raise ScenarioError(f"unknown fault '{name}'; known: {', '.join(FAULTS)}")
    if "at" not in item:
        raise ScenarioError("`at` is required")
    gpu = item.get("gpu")
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise ScenarioError("gpu is a GPU index (0, 1, ...)")
    if action == "stop" and ("params" in item or "duration" in item):
        raise ScenarioError("params and duration belong to start events")
    params = resolve_params(FAULTS[name], item.get("params")) if action == "start" else {}
    duration = seconds(item["duration"]) if item.get("duration") is not None else None
    host = item.get("host")
    return Event(seconds(item["at"]), action, name, None if host is None else str(host), gpu, params, duration)


def load(path: str | Path) -> list[Event]:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, str(path))
