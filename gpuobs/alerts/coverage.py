"""Coverage alert: GPUAlertBlind, an enabled alert that cannot see a GPU because the GPU's
exporter serves none of a signal the alert reads; and the recording it reads.

Where a setup's configuration never serves the signal (dcgm-exporter's default counters have no
ECC), it fires once per cluster and scrape job, its value the number of GPUs blind: per GPU, a
1,000-GPU fleet on default counters raised thousands of alerts, each templated every evaluation
and sent to Alertmanager, and the rule was 40 % of that fleet's rule evaluation. Where the setup
serves the signal and a GPU lacks it (a vGPU guest's temperature, a MIG GPU's row remap), it fires
for that GPU. A rule per blinded alert, set of missing series and kind, each description naming
them and the remedy (Prometheus templates see the expression's labels, not the rule's own, so
they are filled per rule).
"""

from __future__ import annotations

from typing import NamedTuple

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof, Rule
from gpuobs.catalog import DCGM_EXPORTER, EVENT_METRICS, NVIDIA_GPU_EXPORTER
from gpuobs.promql import quote, regex_alternatives, sel
from gpuobs.promtool_cases import Case, flat
from gpuobs.series import applicable, names_of, only, read_keys, union

BLIND_ALERT = "GPUAlertBlind"
MISSING_SERIES = "gpu:series_missing:bool"  # labelled `missing`: GPUs lacking series some alert reads


def _signals(model):
    """(alert, setup names, models it concerns, signal, the signal's keys the setup serves) for
    every signal an enabled GPU alert reads, per setup with GPU models the alert concerns. An alert
    with fallbacks is never blind: they stand in for it where its signal is missing."""
    for alert in model.alerts:
        d = alert.definition
        if d.scope != "gpu" or not d.needs or d.fallbacks:
            continue
        for n in names_of(model):
            models = applicable(n, d)
            for signal in d.needs if models else ():
                yield alert, n, models, signal, [k for k in signal if n.serves(k)]


class Blind(NamedTuple):
    """A signal an enabled alert reads that GPUs of a setup may lack, and the expression finding them."""

    alert: object  # the model's Alert
    exporter: object  # the setup's Exporter
    missing: tuple[str, ...]  # metric names, any one of which would do
    expr: str
    per_gpu: bool  # False: the setup never serves it; one alert per cluster and scrape job


# Labels a never-served signal's alert keeps: the setup is the scrape job, wherever its GPUs are.
SETUP_LABELS = ("cluster", "job")
# And the label that tells it from a per-GPU rule of the same alert and series (promtool's lint
# refuses two alerting rules of one name and label set).
JOB_SCOPE = {"scope": "job"}


def blind_rules(model) -> list[Blind]:
    """Every signal an enabled GPU alert reads that some GPU may lack: never served by the setup
    (one alert per cluster and scrape job, valued at its GPUs the alert concerns), or served but
    absent for a GPU, which reads the GPUs coverage_rules records as missing those series.
    Event series (XIDs) appear only once an event happened, so only their static absence counts."""
    out = []
    for alert, n, models, signal, served in _signals(model):
        names = n.missing_names(signal)
        matcher = only(models, n.model.models_of(n.exporter))
        if not served:
            out.append(Blind(alert, n.exporter, names,
                             f"count by ({', '.join(SETUP_LABELS)}) ({n.present(matcher)})", False))
        elif _absence(n, served):
            label = f"missing={quote(' or '.join(names))}"
            out.append(Blind(alert, n.exporter, names, sel(MISSING_SERIES, n.job, label, matcher), True))
    return out


def _absence(n, served: list[str]) -> str | None:
    """The GPUs of a setup lacking every one of the `served` series, or None where no GPU can lack
    them: the series that makes a GPU present, and event series that exist only after an event."""
    if n.presence_key in served or all(k in EVENT_METRICS for k in served):
        return None
    # One selector for every name, and the series as they are (one per MIG instance or pod too):
    # `unless on` needs neither a union nor a per-GPU reduction, each of which costs more than
    # the comparison itself.
    metrics = [n.profile.metric(k) for k in read_keys(n, served)]
    present = sel(metrics[0], n.job) if len(metrics) == 1 else \
        sel("", f"__name__=~{quote(regex_alternatives(metrics))}", n.job)
    if not n.profile.has_label("gpu"):
        present = n.per_gpu(present)
    return f"{n.present()}\nunless on (cluster, {n.host}, gpu)\n{present}"


def coverage_rules(model) -> list[dict]:
    """One recording per setup and set of series some GPU may lack, labelled with their names:
    several alerts read the same series (the three thermal alerts read the temperature), and a
    check is as costly as a copy of every GPU's series, while the GPUAlertBlind rules reading its
    result (nothing, on a fleet that lacks nothing) cost nothing."""
    checks: dict[str, list[str]] = {}  # {missing: one check per setup}, a rule each (setups differ in `job`)
    for _, n, _, signal, served in _signals(model):
        check = _absence(n, served) if served else None
        if check:
            setups = checks.setdefault(" or ".join(n.missing_names(signal)), [])
            setups += [check] if check not in setups else []
    return [{"record": MISSING_SERIES, "expr": union(setups), "labels": {"missing": missing}}
            for missing, setups in checks.items()]


def blind_remedy(exporter, missing: tuple[str, ...]) -> str:
    if exporter.kind == DCGM_EXPORTER:
        if any(name in exporter.counters for name in missing):
            return ("The counter is enabled, but this GPU does not report it (a vGPU guest, a MIG GPU, a driver "
                    "without it).")
        field = next((name for name in missing if name.startswith("DCGM_")), missing[0])
        return (f"Add {field} to dcgm-exporter's counters CSV (`counters: gpuobs` in the spec generates one with "
                "every field gpuobs reads), or disable the alert in the spec.")
    if exporter.kind == NVIDIA_GPU_EXPORTER:
        return ("nvidia_gpu_exporter does not serve it; monitor this GPU with gpuobs-exporter or dcgm-exporter, "
                "or disable the alert in the spec.")
    return "The GPU or its driver does not report it (a vGPU guest, a MIG GPU, an old driver); check nvidia-smi -q."


def blind_fill(model, blinded, missing: tuple[str, ...], per_gpu: bool) -> dict:
    """What a GPUAlertBlind rule's description says about the alert it stands in for; one rule
    covers every setup missing the same series the same way, naming each setup's remedy where
    they differ."""
    setups = [b.exporter for b in blind_rules(model)
              if b.alert.name == blinded.name and b.missing == missing and b.per_gpu == per_gpu]
    remedies = {e.job: blind_remedy(e, missing) for e in setups}
    remedy = next(iter(remedies.values())) if len(set(remedies.values())) == 1 else \
        " ".join(f"On {job}: {text}" for job, text in remedies.items())
    who = f"{GPU_TEXT} serves" if per_gpu else \
        "{{ $labels.cluster }}: the {{ printf \"%.0f\" $value }} GPUs of scrape job {{ $labels.job }} serve"
    return {"who": who, "whom": "it" if per_gpu else "them", "missing": " or ".join(missing),
            "blind_alert": blinded.name, "remedy": remedy}


def blind_labels(blinded, missing: tuple[str, ...], per_gpu: bool) -> dict:
    return {"blind_alert": blinded.name, "missing": " or ".join(missing), **({} if per_gpu else JOB_SCOPE)}


def _variants(d, model, ns) -> list[Rule]:
    """A rule per blinded alert, set of missing series and kind, over every setup missing them."""
    merged: dict[tuple, tuple] = {}
    for b in blind_rules(model):
        merged.setdefault((b.alert.name, b.missing, b.per_gpu), (b.alert, []))[1].append(b.expr)
    return [Rule(union(exprs), blind_labels(blinded, missing, per_gpu), blind_fill(model, blinded, missing, per_gpu))
            for (_name, missing, per_gpu), (blinded, exprs) in merged.items()]


def _cases(b, alert, gpu, t) -> list[Case]:
    """One case per setup (and GPU model where alerts concern only some models): a GPU without
    each signal the setup serves (every other signal present) raises GPUAlertBlind for exactly
    the alerts that signal blinds; the signals the setup never serves raise one alert each for
    the setup, valued at the case's GPUs."""
    model = b.model
    cases = []
    due = b.due(alert)
    rules = blind_rules(model)
    by_host: dict = {}
    for blind in rules:
        models = [g for g in model.models_of(blind.exporter) if blind.alert.definition.concerns(g)]
        host = next(h for h in model.hosts_of(blind.exporter) if h.gpu is models[0])
        by_host.setdefault(host.name, (host, []))[1].append(blind)
    for host, blinds in by_host.values():
        n = b.use(host)
        signals = {n.profile.metric(k) for a in model.alerts for s in a.definition.needs for k in s if n.serves(k)}
        lacking = list(dict.fromkeys(bl.missing for bl in blinds if signals & set(bl.missing))) + [()]
        case = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: a GPU without each signal, one with all")
        expected = []
        # Every rule of the setup that concerns this model, also those tested on another host.
        setup = [bl for bl in rules if bl.exporter is n.exporter and bl.alert.definition.concerns(host.gpu)]
        for index, missing in enumerate(lacking):
            labels = b.gpu_labels(host, index)
            given = signals - set(missing)
            for metric, lbls, v in b.presence(labels):
                case.add(metric, lbls, flat(v, due))
                given.discard(metric)
            for metric in sorted(given):
                case.add(metric, labels, flat(0, due))
            expected += [b.expect(alert, labels, 1, blind_labels(bl.alert, bl.missing, True),
                                  blind_fill(model, bl.alert, bl.missing, True))
                         for bl in setup if bl.per_gpu and not (signals - set(missing)) & set(bl.missing)]
        where = {k: v for k, v in b.gpu_labels(host, 0).items() if k in SETUP_LABELS}
        expected += [b.expect(alert, where, len(lacking), blind_labels(bl.alert, bl.missing, False),
                              blind_fill(model, bl.alert, bl.missing, False))
                     for bl in setup if not bl.per_gpu]
        case.checks.append((due, alert.name, expected))
        quiet = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: no GPU, quiet")
        quiet.add("up", b.up_labels(host), flat(1, due))
        quiet.checks.append((due, alert.name, []))
        cases += [case, quiet]
    return cases


ALERTS = (
    AlertDef(BLIND_ALERT, "coverage", "warning", "notify", "10m",
             "An enabled alert cannot see some GPUs",
             "{who} no {missing}, so {blind_alert} cannot fire for {whom}. {remedy}",
             panel=(links.MONITORING, links.BLIND_SPOTS_PANEL),
             # Needs no fault: a setup that cannot serve some alert raises it for every GPU.
             proof=Proof(()), cases_per="fleet", variants=_variants, cases=_cases),
)
