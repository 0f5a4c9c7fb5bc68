"""The spec's `rules:` section: recording rules and alerts of the user's own, each with the promtool
cases that prove it. PromQL is parsed here, so a typo is a spec error with its line, not a
Prometheus that refuses its rule files."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from gpuobs.errors import clipped, shown
from gpuobs.spec.schema import (
    Action,
    AlertLabels,
    Duration,
    LabelName,
    Labels,
    LabelValue,
    Line,
    Name,
    Severity,
    Strict,
    Url,
)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_ALERT_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The annotation templates gpuobs can render for the tests' expected annotations (alerts.render_annotation).
LABEL_REF = re.compile(r"\{\{ \$labels\.([a-zA-Z_][a-zA-Z0-9_]*) \}\}")
VALUE_REF = re.compile(r'\{\{ printf "%\.\df" \$value \}\}')
# One sample of promtool's expanding notation: a value, `_` (none), `stale`, or a start, a step
# and a count (`0+1x10`, `5x3`, `_x3`).
_NUMBER = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|Inf|NaN)"
_SAMPLE = re.compile(rf"{_NUMBER}(?:[-+]{_NUMBER.removeprefix('[-+]?')})?x\d+|{_NUMBER}|_(?:x\d+)?|stale")


def _expr(value: str) -> str:
    import promql_parser  # imported here: only specs with PromQL of their own pay for it

    try:
        node = promql_parser.parse(value)
    except ValueError as exc:
        raise ValueError(f"does not parse as PromQL: {clipped(str(exc))}") from None
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    # promtool passes these; Prometheus fails the rule at every evaluation.
    kind = {promql_parser.MatrixSelector: "a range vector", promql_parser.SubqueryExpr: "a range vector",
            promql_parser.StringLiteral: "a string"}.get(type(node))
    if kind:
        raise ValueError(f"gives {kind}; a rule's expression must give an instant vector or a number "
                         "(e.g. rate(x[5m]), not x[5m])")
    return value


def _metric_name(value: str) -> str:
    if not _METRIC_NAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid metric name; use letters, digits, '_' and ':' "
                         "(level:metric:operations, e.g. cluster:gpu_memory_used:bytes)")
    return value


def _alert_name(value: str) -> str:
    if not _ALERT_NAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid alert name; use letters, digits and '_', not starting "
                         "with a digit")
    return value


def _template(value: str) -> str:
    """Only the subset the generated tests can render: anything else Prometheus would expand to
    text the expected annotations could not foresee."""
    rest = VALUE_REF.sub("", LABEL_REF.sub("", value))
    if "{{" in rest or "}}" in rest:
        raise ValueError(f"{shown(value)} uses template syntax gpuobs cannot check; use only "
                         "'{{ $labels.NAME }}' and '{{ printf \"%.1f\" $value }}' (0-9 decimals)")
    return value


def _series(value: str) -> str:
    """promtool's series notation: a metric name and equality matchers, nothing else."""
    import promql_parser

    try:
        node = promql_parser.parse(value)
    except ValueError:
        node = None
    exact = (isinstance(node, promql_parser.VectorSelector) and node.name and node.offset is None
             and node.at is None and all(m.op == promql_parser.MatchOp.Equal for m in node.matchers.matchers))
    if not exact:
        raise ValueError(f"{shown(value)} is not a series in promtool's notation; write "
                         "metric_name{label=\"value\", ...} with = matchers only")
    return value


def _values(value: str) -> str:
    samples = value.split()
    bad = next((sample for sample in samples if not _SAMPLE.fullmatch(sample)), None)
    if not samples or bad is not None:
        which = f" ({shown(bad)} is not a sample)" if len(samples) > 1 else ""
        raise ValueError(f"{shown(value)} is not in promtool's expanding notation{which}; write values like "
                         "'1 2 3', '0+10x20' (start, step, count), '5x3', '_' or 'stale'")
    return value


Expr = Annotated[str, AfterValidator(_expr)]
Template = Annotated[str, AfterValidator(_template)]


class InputSeries(Strict):
    """One input series of a case, as promtool takes it."""

    series: Annotated[str, AfterValidator(_series)] = Field(description='e.g. gpu:utilization:ratio{gpu="0"}')
    values: Annotated[str, AfterValidator(_values)] = Field(
        description="one sample per interval in promtool's expanding notation, e.g. '0+1x10' or '90x20'")


class Case(Strict):
    name: Line | None = Field(None, description="default: the rule's name and the case's index")
    interval: Duration | None = Field(None, description="time between input samples; default: "
                                      "prometheus.scrape_interval")
    series: list[InputSeries] = Field(default_factory=list, description="the input; none tests an absent input")
    eval_time: Duration = Field(description="when the expectation is checked, from the first sample")


class ExpectedAlert(Strict):
    """An alert that must be firing at the case's eval_time."""

    labels: Labels = Field(default_factory=dict, description="the labels the expression gives it; gpuobs adds "
                           "the rule's own (severity, action, family, team, labels)")
    value: float | None = Field(None, description="the value it fires with; needed where an annotation prints it")


class AlertCase(Case):
    firing: list[ExpectedAlert] = Field(default_factory=list, description="none: the alert must be quiet")


class ExpectedSample(Strict):
    labels: Labels = Field(default_factory=dict, description="without the rule's own labels, which gpuobs adds")
    value: float


class RecordingCase(Case):
    samples: list[ExpectedSample] = Field(default_factory=list, description="every sample the rule records "
                                          "then; none: it records nothing")


class RecordingRule(Strict):
    """A series of your own, recorded at every evaluation before your alerts (which may read it)."""

    record: Annotated[str, AfterValidator(_metric_name)]
    expr: Expr
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    cases: list[RecordingCase] = Field(min_length=1, description="promtool cases proving the rule's values")


class OwnAlert(Strict):
    """An alert of your own: routed, inhibited, tested and listed like the built-in ones."""

    alert: Annotated[str, AfterValidator(_alert_name)]
    expr: Expr
    for_: Duration = Field("0s", alias="for")
    severity: Severity
    action: Action
    family: Name = Field(description="a critical alert silences warnings of its family on the same GPU; a "
                         "built-in family (thermal, power, ...) joins the built-in alerts'")
    team: Name | None = Field(None, description="routes to this team's receivers, whatever host it names")
    labels: AlertLabels = Field(default_factory=dict)
    summary: Template = Field(min_length=1)
    description: Template | None = None
    runbook_url: Url | None = None
    cases: list[AlertCase] = Field(description="at least one case where it fires and one where it is quiet")


class OwnRules(Strict):
    recording: list[RecordingRule] = Field(default_factory=list)
    alerts: list[OwnAlert] = Field(default_factory=list)
