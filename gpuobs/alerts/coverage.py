"""Coverage alert: GPUAlertBlind, an enabled alert that cannot see a GPU because the GPU's
exporter serves none of a signal the alert reads; and the recording it reads.

It fires once per GPU and blinded alert: a rule per blinded alert and set of missing series,
each description naming them and the remedy (Prometheus templates see the expression's labels,
not the rule's own, so they are filled per rule).
"""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof, Rule
from gpuobs.catalog import DCGM_EXPORTER, EVENT_METRICS, NVIDIA_GPU_EXPORTER
from gpuobs.promql import quote, regex_alternatives, sel
from gpuobs.promtool_cases import Case, flat
from gpuobs.series import applicable, names_of, only, union

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


def blind_rules(model) -> list:
    """(alert it blinds, setup, missing metric names, expression) for every signal an enabled
    GPU alert reads that some GPU may lack: never served by the setup (fires for each of its
    GPUs), or served but absent for a GPU (a vGPU guest's temperature, a MIG GPU's row remap),
    which reads the GPUs coverage_rules records as missing those series.
    Event series (XIDs) appear only once an event happened, so only their static absence counts."""
    out = []
    for alert, n, models, signal, served in _signals(model):
        names = n.missing_names(signal)
        matcher = only(models, n.model.models_of(n.exporter))
        if not served:
            out.append((alert, n.exporter, names, n.present(matcher)))
        elif _absence(n, served):
            label = f"missing={quote(' or '.join(names))}"
            out.append((alert, n.exporter, names, sel(MISSING_SERIES, n.job, label, matcher)))
    return out


def _absence(n, served: list[str]) -> str | None:
    """The GPUs of a setup lacking every one of the `served` series, or None where no GPU can lack
    them: the series that makes a GPU present, and event series that exist only after an event."""
    if n.presence_key in served or all(k in EVENT_METRICS for k in served):
        return None
    # One selector for every name, and the series as they are (one per MIG instance or pod too):
    # `unless on` needs neither a union nor a per-GPU reduction, each of which costs more than
    # the comparison itself.
    metrics = [n.profile.metric(k) for k in served]
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


def blind_fill(model, blinded, missing: tuple[str, ...]) -> dict:
    """What a GPUAlertBlind rule's description says about the alert it stands in for; one rule
    covers every setup missing the same series, naming each setup's remedy where they differ."""
    setups = [e for b, e, m, _ in blind_rules(model) if b.name == blinded.name and m == missing]
    remedies = {e.job: blind_remedy(e, missing) for e in setups}
    remedy = next(iter(remedies.values())) if len(set(remedies.values())) == 1 else \
        " ".join(f"On {job}: {text}" for job, text in remedies.items())
    return {"missing": " or ".join(missing), "blind_alert": blinded.name, "remedy": remedy}


def _variants(d, model, ns) -> list[Rule]:
    """A rule per blinded alert and set of missing series, over every setup missing them."""
    merged: dict[tuple, tuple] = {}
    for blinded, _exporter, missing, expr in blind_rules(model):
        merged.setdefault((blinded.name, missing), (blinded, []))[1].append(expr)
    return [Rule(union(exprs), {"blind_alert": blinded.name, "missing": " or ".join(missing)},
                 blind_fill(model, blinded, missing))
            for (_name, missing), (blinded, exprs) in merged.items()]


def _cases(b, alert, gpu, t) -> list[Case]:
    """One case per setup (and GPU model where alerts concern only some models): a GPU without
    each signal the setup serves (every other signal present) raises GPUAlertBlind for exactly
    the alerts that signal blinds; a GPU with every signal raises only the never-served ones."""
    model = b.model
    cases = []
    due = b.due(alert)
    by_host: dict = {}
    for blinded, exporter, missing, _expr in blind_rules(model):
        models = [g for g in model.models_of(exporter) if blinded.definition.concerns(g)]
        host = next(h for h in model.hosts_of(exporter) if h.gpu is models[0])
        by_host.setdefault(host.name, (host, []))[1].append((blinded, missing))
    for host, rules in by_host.values():
        n = b.use(host)
        signals = {n.profile.metric(k) for a in model.alerts for s in a.definition.needs for k in s if n.serves(k)}
        lacking = list(dict.fromkeys(m for _, m in rules if signals & set(m))) + [()]
        case = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: a GPU without each signal, one with all")
        expected = []
        for index, missing in enumerate(lacking):
            labels = b.gpu_labels(host, index)
            given = signals - set(missing)
            for metric, lbls, v in b.presence(labels):
                case.add(metric, lbls, flat(v, due))
                given.discard(metric)
            for metric in sorted(given):
                case.add(metric, labels, flat(0, due))
            # Every rule of the setup that concerns this model, also those tested on another host.
            expected += [b.expect(alert, labels, 1, {"blind_alert": bl.name, "missing": " or ".join(m)},
                                  blind_fill(model, bl, m))
                         for bl, e, m, _ in blind_rules(model)
                         if e is n.exporter and bl.definition.concerns(host.gpu)
                         and not (signals - set(missing)) & set(m)]
        case.checks.append((due, alert.name, expected))
        quiet = Case(f"{alert.name} {n.exporter.job} {host.gpu.key}: no GPU, quiet")
        quiet.add("up", b.up_labels(host), flat(1, due))
        quiet.checks.append((due, alert.name, []))
        cases += [case, quiet]
    return cases


ALERTS = (
    AlertDef(BLIND_ALERT, "coverage", "warning", "notify", "10m",
             "An enabled alert cannot see this GPU",
             f"{GPU_TEXT} serves no {{missing}}, so {{blind_alert}} cannot fire for it. {{remedy}}",
             panel=(links.MONITORING, links.BLIND_SPOTS_PANEL),
             # Needs no fault: a setup that cannot serve some alert raises it for every GPU.
             proof=Proof(()), cases_per="fleet", variants=_variants, cases=_cases),
)
