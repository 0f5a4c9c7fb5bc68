"""Checks of the alertmanager section: references, routes that could never match, inhibitions
over labels no gpuobs alert carries."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gpuobs.alerts import ALERTS, is_enabled
from gpuobs.catalog import DCGM_LABELS, NVIDIA_SMI_LABELS, WORKLOAD_LABELS
from gpuobs.errors import Problem, shown
from gpuobs.receivers import DISCARD_RECEIVER, RECEIVER_KINDS
from gpuobs.spec.schema import Fleet

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Labels every gpuobs alert or some of them carry, besides the spec's own target and alert labels.
_ALERT_LABELS = {"alertname", "severity", "action", "family", "cluster", "team", "job", "instance", "gpu_model",
                 "xid", "reason", "blind_alert", "missing", "Hostname"}


def enabled_alerts(fleet: Fleet):
    """(alert, severity in force) for every alert the spec leaves enabled."""
    for alert in ALERTS:
        override = fleet.alerts.get(alert.name)
        if is_enabled(alert, fleet):
            yield alert, (override and override.severity) or alert.severity


def alert_label_names(fleet: Fleet) -> set[str]:
    names = set(_ALERT_LABELS) | {fleet.prometheus.host_label} | set(DCGM_LABELS.values())
    names |= set(NVIDIA_SMI_LABELS.values())
    names |= set(fleet.prometheus.external_labels)
    for cluster in fleet.clusters:
        names |= set(cluster.labels)
        if cluster.prometheus is not None:  # its external labels go onto its alerts
            names |= set(cluster.prometheus.external_labels)
    for host in fleet.hosts:
        names |= set(host.labels)
    for override in fleet.alerts.values():
        names |= set(override.labels)
    if fleet.efficiency is not None:  # the idle-allocation alert names who holds the GPU
        names |= {"held_by"} | {label for label in WORKLOAD_LABELS if not label.startswith("exported_")}
    return names


def check_alertmanager(fleet: Fleet) -> list[Problem]:
    am = fleet.alertmanager
    if am is None:
        return [Problem(f"teams[{i}].receivers", "team receivers need an alertmanager section")
                for i, t in enumerate(fleet.teams) if t.receivers]
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    names = [r.name for r in am.receivers]
    seen: set[str] = set()
    for i, receiver in enumerate(am.receivers):
        if receiver.name in seen:
            add(f"alertmanager.receivers[{i}].name", f"duplicate receiver name '{receiver.name}'")
        seen.add(receiver.name)
        if receiver.name == DISCARD_RECEIVER:
            add(f"alertmanager.receivers[{i}].name", f"'{DISCARD_RECEIVER}' is the receiver gpuobs generates for "
                "alerts that go nowhere; choose another name")
        kinds = [k for k in RECEIVER_KINDS if getattr(receiver, k) is not None]
        if len(kinds) != 1:
            add(f"alertmanager.receivers[{i}]", f"a receiver needs exactly one of {', '.join(RECEIVER_KINDS)}; "
                f"found {', '.join(kinds) or 'none'}")
        if receiver.email and receiver.email.auth_username and not receiver.email.auth_password_file:
            add(f"alertmanager.receivers[{i}].email.auth_password_file",
                "auth_username needs auth_password_file (the password, in a file)")

    def check_receiver(path: str, name: str | None) -> None:
        if name is not None and name not in names:
            add(path, f"unknown receiver '{name}'; known: {', '.join(names)}")

    routing = am.routing
    severities = {severity for _, severity in enabled_alerts(fleet)}
    actions = {alert.action for alert, _ in enabled_alerts(fleet)}
    for severity, receiver in routing.by_severity.items():
        check_receiver(f"alertmanager.routing.by_severity.{severity}", receiver)
        if receiver is not None and severity not in severities:
            add(f"alertmanager.routing.by_severity.{severity}",
                f"no enabled alert has severity {severity}: this route can never match")
    for action, receiver in routing.by_action.items():
        check_receiver(f"alertmanager.routing.by_action.{action}", receiver)
        if action not in actions:
            add(f"alertmanager.routing.by_action.{action}",
                f"no enabled alert has action {action}: this route can never match")
    check_receiver("alertmanager.routing.default_receiver", routing.default_receiver)
    for i, team in enumerate(fleet.teams):
        for severity, receiver in team.receivers.items():
            check_receiver(f"teams[{i}].receivers.{severity}", receiver)
            if receiver is not None and severity not in severities:
                add(f"teams[{i}].receivers.{severity}",
                    f"no enabled alert has severity {severity}: this route can never match")

    intervals = [t.name for t in am.time_intervals]
    for i, interval in enumerate(am.time_intervals):
        if interval.name in intervals[:i]:
            add(f"alertmanager.time_intervals[{i}].name", f"duplicate time interval '{interval.name}'")
        for j, days in enumerate(interval.weekdays):
            if any(day not in WEEKDAYS for day in days.split(":")) or days.count(":") > 1:
                add(f"alertmanager.time_intervals[{i}].weekdays[{j}]",
                    f"{shown(days)} is not a weekday or a range like monday:friday")
        for j, times in enumerate(interval.times):
            if times.start_time >= times.end_time:
                add(f"alertmanager.time_intervals[{i}].times[{j}]", "start_time must be before end_time")
        try:
            ZoneInfo(interval.location)
        except (ZoneInfoNotFoundError, ValueError):
            add(f"alertmanager.time_intervals[{i}].location", f"unknown time zone {shown(interval.location)}")
    if routing.mute_warnings_outside is not None and routing.mute_warnings_outside not in intervals:
        add("alertmanager.routing.mute_warnings_outside",
            f"unknown time interval '{routing.mute_warnings_outside}'; known: {', '.join(intervals) or 'none'}")

    carried = alert_label_names(fleet)
    for i, label in enumerate(routing.group_by or []):
        if label not in carried:
            add(f"alertmanager.routing.group_by[{i}]", f"no gpuobs alert carries label '{label}'")
    for i, rule in enumerate(am.inhibit_rules):
        for part in ("source", "target"):
            for label in getattr(rule, part):
                if label not in carried:
                    add(f"alertmanager.inhibit_rules[{i}].{part}.{label}",
                        f"no gpuobs alert carries label '{label}'; the rule would never match")
        for j, label in enumerate(rule.equal):
            if label not in carried:
                add(f"alertmanager.inhibit_rules[{i}].equal[{j}]",
                    f"no gpuobs alert carries label '{label}': every alert would count as equal on it")
    return problems
