"""The spec's own recording rules and alerts as the generators read them: immutable, defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expected:
    """A firing alert (labels from the expression, value where an annotation prints it) or a recorded
    sample (labels without the rule's own, value)."""

    labels: Pairs
    value: float | None


@dataclass(frozen=True)
class OwnCase:
    name: str
    interval: str
    series: tuple[tuple[str, str], ...]  # (series in promtool's notation, values)
    eval_time: str
    expected: tuple[Expected, ...]  # empty: quiet (an alert) or nothing recorded


@dataclass(frozen=True)
class OwnRecording:
    record: str
    expr: str
    labels: Pairs
    cases: tuple[OwnCase, ...]


@dataclass(frozen=True)
class OwnAlert:
    name: str
    expr: str
    for_: str
    severity: str
    action: str
    family: str
    team: str | None
    labels: Pairs  # the spec's extra labels
    summary: str
    description: str | None
    runbook_url: str | None
    cases: tuple[OwnCase, ...]

    @property
    def rule_labels(self) -> dict[str, str]:
        """Every label the rule sets, as routing and inhibitions read them."""
        return {"severity": self.severity, "action": self.action, "family": self.family,
                **({"team": self.team} if self.team else {}), **dict(self.labels)}


@dataclass(frozen=True)
class OwnRules:
    recording: tuple[OwnRecording, ...] = ()
    alerts: tuple[OwnAlert, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.recording or self.alerts)


def own_rules(spec, scrape_interval: str) -> OwnRules:
    """The model of a spec's `rules:` section (a spec.own_rules.OwnRules, or None)."""
    if spec is None:
        return OwnRules()

    def cases(name: str, given, expected_of) -> tuple[OwnCase, ...]:
        return tuple(OwnCase(
            name=f"{name}: {c.name or f'case {i + 1}'}", interval=c.interval or scrape_interval,
            series=tuple((s.series, s.values) for s in c.series), eval_time=c.eval_time,
            expected=tuple(Expected(tuple(sorted(e.labels.items())), e.value) for e in expected_of(c)),
        ) for i, c in enumerate(given))

    return OwnRules(
        recording=tuple(OwnRecording(r.record, r.expr, tuple(sorted(r.labels.items())),
                                     cases(r.record, r.cases, lambda c: c.samples)) for r in spec.recording),
        alerts=tuple(OwnAlert(
            name=a.alert, expr=a.expr, for_=a.for_, severity=a.severity, action=a.action, family=a.family,
            team=a.team, labels=tuple(sorted(a.labels.items())), summary=a.summary, description=a.description,
            runbook_url=a.runbook_url, cases=cases(a.alert, a.cases, lambda c: c.firing)) for a in spec.alerts),
    )
