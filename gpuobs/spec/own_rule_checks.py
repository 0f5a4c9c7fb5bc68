"""Checks of the spec's own rules against the rest of the spec and against what gpuobs generates:
names that would clash, teams and labels, and cases that could not prove an alert."""

from __future__ import annotations

from gpuobs.alerts import BY_NAME as ALERTS_BY_NAME
from gpuobs.errors import Problem, shown
from gpuobs.spec.own_rules import VALUE_REF
from gpuobs.spec.schema import Fleet


def check_own_rules(fleet: Fleet, reserved: set[str]) -> list[Problem]:
    """Problems of `rules:` that need the rest of the spec; `reserved` are the labels gpuobs sets."""
    if fleet.rules is None:
        return []
    problems: list[Problem] = []
    add = lambda path, message: problems.append(Problem(path, message))  # noqa: E731
    teams = [t.name for t in fleet.teams]
    named: set[str] = set()
    for i, alert in enumerate(fleet.rules.alerts):
        path = f"rules.alerts[{i}]"
        if alert.alert in ALERTS_BY_NAME:
            add(f"{path}.alert", f"'{alert.alert}' is a built-in alert; give yours another name (a built-in alert "
                "is tuned under alerts:)")
        elif alert.alert in named:
            add(f"{path}.alert", f"another alert of yours is also named '{alert.alert}'; each needs a name of its own")
        named.add(alert.alert)
        if alert.team is not None and alert.team not in teams:
            known = ", ".join(teams) or "none (the spec has no teams)"
            add(f"{path}.team", f"unknown team '{alert.team}'; known: {known}")
        for key in alert.labels:
            if key in reserved:
                add(f"{path}.labels.{key}", f"label '{key}' is set by gpuobs itself; choose another name")
        _check_alert_cases(add, path, alert)
    seen: set = set()
    for i, rule in enumerate(fleet.rules.recording):
        path = f"rules.recording[{i}]"
        key = (rule.record, tuple(sorted(rule.labels.items())))
        if key in seen:
            add(f"{path}.record", f"another recording rule of yours records '{rule.record}' with the same labels; "
                "their series would overwrite each other")
        seen.add(key)
        for j, case in enumerate(rule.cases):
            for k, sample in enumerate(case.samples):
                for label in sample.labels.keys() & rule.labels.keys():
                    add(f"{path}.cases[{j}].samples[{k}].labels.{label}",
                        f"the rule sets '{label}' itself; leave it out here (gpuobs adds the rule's labels)")
    return problems


def _check_alert_cases(add, path: str, alert) -> None:
    if not any(c.firing for c in alert.cases):
        add(f"{path}.cases", f"every alert needs a case where it fires and a quiet one; {alert.alert} has no case "
            "where it fires (one with firing:)")
    elif all(c.firing for c in alert.cases):
        add(f"{path}.cases", f"every alert needs a case where it fires and a quiet one; {alert.alert} has no quiet "
            "case (one without firing:)")
    own = {"alertname", "severity", "action", "family", *(["team"] if alert.team else []), *alert.labels}
    prints_value = [name for name, text in (("summary", alert.summary), ("description", alert.description))
                    if text and VALUE_REF.search(text)]
    for j, case in enumerate(alert.cases):
        for k, expected in enumerate(case.firing):
            where = f"{path}.cases[{j}].firing[{k}]"
            for label in sorted(expected.labels.keys() & own):
                add(f"{where}.labels.{label}", f"the rule sets '{label}' itself; leave it out here (gpuobs adds "
                    "the rule's labels)")
            if prints_value and expected.value is None:
                add(where, f"the {' and '.join(prints_value)} print{'s' * (len(prints_value) == 1)} $value; give "
                    "the value the alert fires with (value:)")


def check_recorded_names(fleet: Fleet, fleet_name: str) -> list[Problem]:
    """Own recording rules named like a series gpuobs records for this fleet would overwrite it. Run
    on a spec without other problems: it builds the fleet's rules."""
    if fleet.rules is None or not fleet.rules.recording:
        return []
    from gpuobs.generators import own_rules, rules  # the generators know what they record
    from gpuobs.model import build_model

    documents = rules.generate(build_model(fleet, fleet_name, ""))
    ours = {rule["record"] for path, document in documents.items() if path != own_rules.RULES
            for group in document["groups"] for rule in group["rules"] if "record" in rule}
    return [Problem(f"rules.recording[{i}].record", f"{shown(rule.record)} is a series gpuobs records itself; "
                    "choose another name (read gpuobs' series in your expr instead)")
            for i, rule in enumerate(fleet.rules.recording) if rule.record in ours]
