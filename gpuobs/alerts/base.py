"""What an alert is: one object holding everything about it, which the generators and the
end-to-end test read and nothing else restates.

Annotation templates use a deliberately small subset of Prometheus' template language
(`{{ $labels.NAME }}` and `{{ printf "%.1f" $value }}`) so generated tests can compute the
exact expected text (see render_annotation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from gpuobs.generators.promtests import Builder
    from gpuobs.gpus import GpuModel
    from gpuobs.model import Alert, FleetModel
    from gpuobs.promtool_cases import Case
    from gpuobs.series import Names
    from gpuobs.thresholds import Thresholds

SEVERITIES = ("critical", "warning", "info")
ACTIONS = ("notify", "throttle", "preempt", "drain", "reset", "quarantine")
# Where promtool cases are written: per exporter setup serving the alert's signals and per GPU
# model it concerns (where thresholds differ by model), per setup for the first such model only
# (the condition is the same for every model), or once for the fleet (the builder picks hosts).
CASES_PER = ("model", "setup", "fleet")

# Annotation pieces: the GPU an alert is about, and its value.
GPU_TEXT = "{{ $labels.cluster }}/{{ $labels.host }} GPU {{ $labels.gpu }} ({{ $labels.gpu_model }})"
VALUE_TEXT = '{{ printf "%.1f" $value }}'


@dataclass(frozen=True, eq=False)
class Proof:
    """How the end-to-end test makes the alert fire in a real stack: simulator faults (name,
    parameters) run together on one GPU (on the host, for a host alert), and the labels they give
    the alert beyond its own and its target's. No faults: the alert needs none, its condition is
    in an exporter setup itself (GPUAlertBlind, on a setup that cannot serve some alert)."""

    faults: tuple[tuple[str, dict], ...]
    labels: dict[str, str] = field(default_factory=dict)
    # No fault either: the simulator's idle notebook pods (`--pods` puts one on every fourth GPU a
    # pod holds: 3, 7, ...) raise it on a healthy host.
    idle_pod: bool = False


class Rule(NamedTuple):
    """One alerting rule of an alert: its expression, labels beyond the alert's own, and the
    values of the `{placeholders}` in its description."""

    expr: str
    labels: dict[str, str] = {}
    fill: dict[str, str] = {}


@dataclass(frozen=True, eq=False)
class AlertDef:
    """One alert. The spec can override severity, `for`, extra labels and whether it is enabled;
    everything else is here. Its runbook is the section of docs/runbooks.md titled with its name."""

    name: str
    family: str  # critical inhibits warning within one family on one GPU
    severity: str
    action: str
    for_: str
    summary: str
    description: str
    panel: tuple[str, int]  # (dashboard key, panel id) its dashboard_url opens: where its metric shows
    proof: Proof
    # Its promtool cases: a firing case with exact labels and annotations, and quiet ones.
    cases: Callable[[Builder, Alert, GpuModel | None, Thresholds | None], list[Case]]
    cases_per: str = "model"  # one of CASES_PER
    # Its PromQL, from the fleet model and the Names of each exporter setup.
    expression: Callable[[AlertDef, FleetModel, list[Names]], str] | None = None
    # Instead of one expression, several rules (GPUAlertBlind: one per alert it stands in for).
    variants: Callable[[AlertDef, FleetModel, list[Names]], list[Rule]] | None = None
    scope: str = "gpu"  # gpu: one alert per GPU; host: one per host
    xid_codes: tuple[int, ...] = ()
    # The exporter signals the alert reads: each entry is one signal, served by any of its
    # logical metrics. A GPU lacking one cannot raise the alert, and GPUAlertBlind says so.
    needs: tuple[tuple[str, ...], ...] = ()
    # Alerts that cover the same failures, less precisely, where a GPU lacks a signal this one
    # needs: there this alert is simply absent, not blind (GPUAlertBlind stays silent for it).
    fallbacks: tuple[str, ...] = ()
    # Which GPU models the alert concerns: all, or only those with NVLink, row remapping (Ampere
    # and later) or page retirement (Volta).
    applies_to: str = "all"
    # Off unless the spec names it under `alerts:`: its signal is normal operation on many fleets.
    on_by_default: bool = True
    # A warning whose condition holds until an operator acts (a repair waiting for a reset): it
    # runs in the slow tier whatever its `for`, since a minute is nothing next to its wait.
    waits_for_operator: bool = False
    # The spec section the alert belongs to: a fleet without it has no such alert, neither on nor
    # off (nothing generated, no cases, no blind spots). `section_for` reads its `for` from the
    # section; the spec's `alerts:` override still wins, as for every alert.
    section: str | None = None
    section_for: Callable[[object], str] | None = None

    def __post_init__(self):
        if (self.expression is None) == (self.variants is None):
            raise ValueError(f"{self.name}: give either an expression or variants")
        if self.cases_per not in CASES_PER:
            raise ValueError(f"{self.name}: cases_per must be one of {CASES_PER}")

    def rules(self, model: FleetModel, names: list[Names]) -> list[Rule]:
        if self.variants is not None:
            return self.variants(self, model, names)
        return [Rule(self.expression(self, model, names))]

    @property
    def runbook_anchor(self) -> str:
        """The anchor of its section in the runbook (a markdown heading's, from the alert's name)."""
        return self.name.lower()

    def belongs_to(self, spec) -> bool:
        """Whether the fleet (its spec or its model: both name their sections alike) has the alert."""
        return self.section is None or getattr(spec, self.section) is not None

    def concerns(self, gpu) -> bool:
        """Whether the alert is about GPUs of this model (a gpus.GpuModel) at all."""
        return {"all": True, "nvlink": gpu.nvlink_links > 0, "row_remapping": gpu.row_remapping}[self.applies_to]


def is_enabled(definition: AlertDef, fleet) -> bool:
    """As the spec's override (its `enabled`) says; an alert the spec does not name, as the catalog
    says. Naming an alert that is off by default turns it on, so an override is never inert (and
    naming one whose section the spec lacks is a spec error)."""
    if not definition.belongs_to(fleet):
        return False
    override = fleet.alerts.get(definition.name)
    if override is None:
        return definition.on_by_default
    return override.enabled is not False


_LABEL_REF = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_PRINTF_REF = re.compile(r'\{\{ printf "%\.(\d)f" \$value \}\}')


def render_annotation(template: str, labels: dict[str, str], value: float) -> str:
    """Evaluate the template subset the catalog uses, as Prometheus would."""
    text = _LABEL_REF.sub(lambda m: labels.get(m.group(1), ""), template)
    return _PRINTF_REF.sub(lambda m: f"{value:.{m.group(1)}f}", text)
