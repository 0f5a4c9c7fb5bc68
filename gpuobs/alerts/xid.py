"""XID alerts: driver-reported GPU errors, one alert per tier of what the GPU then needs.

The tiers' codes come from NVIDIA's XID catalog (gpuobs/xid_catalog.py) by the severity and action
we map each code to; nothing here lists a code by hand. Application-level codes reach the owning
team as info; codes mapped to info that are not the application's (IGNORE and the like) raise
nothing; a code outside the catalog raises GPUXidUnknown.
"""

from __future__ import annotations

from gpuobs import links, xid_catalog
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.promql import quote, seconds, sel
from gpuobs.promtool_cases import STEP, Case, flat

XID_WINDOW = "15m"
# Per GPU and XID code seen within XID_WINDOW: the series every tier reads (see recent).
RECENT = "gpu:xid_errors:recent"
PANEL = (links.GPU_DETAIL, links.XID_PANEL)
NEEDS = (("xid_errors", "xid_window_count", "xid_last"),)
CASE_CODES = 4  # codes per tier the promtool cases fire: the smallest, the largest and two between
UNKNOWN_CASE_CODES = (max(xid_catalog.CATALOG) + 1, xid_catalog.NVML_UNKNOWN_XID)
QUIET_CODE = 63  # a remap event: IGNORE in the catalog, so no tier's


def tier_of(entry: xid_catalog.XidEntry) -> str | None:
    """The alert an XID of the catalog raises, by our severity and action for it; None: none."""
    if entry.app_level:
        return "GPUXidApplication"
    if entry.action == "quarantine":
        return "GPUXidQuarantine"
    if entry.action == "reset" and entry.severity == "critical":
        return "GPUXidReset"
    # A warning that wants a reset lets work go on until then (XID 156): that is draining.
    if entry.action in ("drain", "reset"):
        return "GPUXidDrain"
    if entry.severity == "warning":
        return "GPUXidNotify"
    return None


def alert_for(code: int) -> str:
    """The alert an XID raises, inside the catalog or outside it ("" for none)."""
    entry = xid_catalog.CATALOG.get(code)
    return "GPUXidUnknown" if entry is None else tier_of(entry) or ""


def codes_of(tier: str) -> tuple[int, ...]:
    return tuple(c for c, e in xid_catalog.CATALOG.items() if tier_of(e) == tier)


def recent(n) -> str | None:
    """A setup's XIDs seen within the window, per GPU and code (`xid` label), whatever the tier:
    our counter's increase, else dcgm-exporter's windowed count, else the last-value gauge (which
    misses a second XID of the same code), its value turned into the `xid` label the other two
    carry. Recorded once (RECENT) in the fast group, so the tiers select codes from a few series
    instead of each reading every GPU's gauge once per run of codes."""
    clauses, seen = [], []
    if n.serves("xid_errors"):
        counter = sel(n.xid_errors, n.job)
        clauses += [f"increase({counter}[{XID_WINDOW}]) > 0", f"{counter} > 0 unless {counter} offset {XID_WINDOW}"]
        seen.append(counter)
    if n.serves("xid_window_count"):
        # A gauge over dcgm-exporter's sliding window (default 5m): it falls again, so never rate() it.
        window = sel(n.xid_window_count, n.job)
        clauses.append(f"max without ({n.dropped}, window_size_in_ms) (max_over_time({window}[{XID_WINDOW}])) > 0")
        seen.append(window)
    if n.serves("xid_last"):
        # 0 means no XID yet.
        gauge = f'count_values without () ("xid", {n.gpu("xid_last", where="> 0")})'
        if seen:
            gauge = f"{gauge} unless on (cluster, {n.host}, gpu) ({' or '.join(seen)})"
        clauses.append(gauge)
    return "\nor\n".join(f"({c})" if "\n" in c or " or " in c else c for c in clauses) if clauses else None


def _xid(ns, codes, unknown: bool) -> str:
    """The tier's codes (`unknown`: any code outside `codes`) among the recent XIDs."""
    if not any(n.serves(key) for n in ns for key in NEEDS[0]):
        return ""
    return sel(RECENT, f"xid{'!~' if unknown else '=~'}{quote('|'.join(str(c) for c in codes))}")


def sample(codes) -> tuple[int, ...]:
    """At most CASE_CODES of a tier's codes, spread over it, its smallest and largest included."""
    codes = sorted(codes)
    if len(codes) <= CASE_CODES:
        return tuple(codes)
    return tuple(codes[round(i * (len(codes) - 1) / (CASE_CODES - 1))] for i in range(CASE_CODES))


def _cases(b, alert, gpu, t, codes, quiet_code):
    """Codes of the tier each on its own GPU, through each XID series the setup serves, and a code
    of no tier (of the catalog, for GPUXidUnknown), which stays quiet."""
    n = b.n
    host = b.host_of(gpu)
    codes = [str(c) for c in codes]
    other = str(quiet_code)
    end = b.due(alert) + 9 * STEP
    # The counters hold an XID for the rule's window: a longer `for` needs it to recur (each scrape here).
    once = end <= seconds(XID_WINDOW)
    rising = f"1x3 2x{end // STEP}" if once else f"1+1x{end // STEP}"
    appearing = f"_x3 1x{end // STEP}" if once else f"_x3 1+1x{end // STEP}"
    tier = f"{alert.name} {n.exporter.job} XID {', '.join(codes)}"
    # Each code on a GPU of its own: the last-value gauge holds one code per GPU.
    gpus = [b.gpu_labels(host, i) for i in range(len(codes))]
    cases = []

    def fires(name: str, metric: str, values) -> None:
        case = Case(f"{tier} {name}: fires")
        for labels, code in zip(gpus, codes, strict=True):
            case.add(metric, {**labels, **({"xid": code} if metric != n.xid_last else {})}, values(code))
        # The value, an increase, a count or a count of GPUs with the code, shows in no annotation.
        case.checks.append((end, alert.name, [b.expect(alert, g, 1, {"xid": c})
                                              for g, c in zip(gpus, codes, strict=True)]))
        cases.append(case)

    def quiet(name: str, metric: str, labels: dict, values: str) -> None:
        case = Case(f"{alert.name} {n.exporter.job} XID {other} {name}: quiet")
        case.add(metric, labels, values)
        case.checks.append((end, alert.name, []))
        cases.append(case)

    if n.serves("xid_errors"):
        fires("counters rise", n.xid_errors, lambda c: rising)
        fires("counters appear at 1", n.xid_errors, lambda c: appearing)
        quiet("counter only", n.xid_errors, {**gpus[0], "xid": other}, f"1x3 2x{end // STEP}")
    if n.serves("xid_window_count"):
        window = {"window_size_in_ms": "300000"}
        fires("in dcgm-exporter's windowed count", n.xid_window_count, lambda c: f"_x3 1x{end // STEP}")
        cases[-1].series = [(m, {**lbls, **window}, v) for m, lbls, v in cases[-1].series]
        quiet("in the windowed count", n.xid_window_count, {**gpus[0], "xid": other, **window},
              f"_x3 1x{end // STEP}")
    if n.serves("xid_last"):
        fires("in the last-value gauge", n.xid_last, lambda c: flat(int(c), end + STEP))
        quiet("in the last-value gauge", n.xid_last, gpus[0], flat(int(other), end + STEP))
    return cases


def _tier(name: str, severity: str, action: str, summary: str, advice: str, proof: Proof,
          unknown: bool = False) -> AlertDef:
    """One tier: its codes are the catalog's that tier_of gives it (GPUXidUnknown: none, it fires
    for any code outside the catalog)."""
    codes = () if unknown else codes_of(name)
    listed = tuple(xid_catalog.CATALOG) if unknown else codes
    case_codes = UNKNOWN_CASE_CODES if unknown else sample(codes)
    quiet_code = 13 if unknown else QUIET_CODE
    return AlertDef(name, "xid", severity, action, "0s", summary,
                    f"{GPU_TEXT} raised XID {{{{ $labels.xid }}}}; {advice}",
                    panel=PANEL, proof=proof, xid_codes=codes, needs=NEEDS, cases_per="setup",
                    expression=lambda d, model, ns: _xid(ns, listed, unknown),
                    cases=lambda b, alert, gpu, t: _cases(b, alert, gpu, t, case_codes, quiet_code))


ALERTS = (
    _tier("GPUXidQuarantine", "critical", "quarantine", "XID error that takes the GPU out of service",
          "the GPU needs to be taken out of service and inspected.",
          Proof((("xid", {"code": 64}),), {"xid": "64"})),
    _tier("GPUXidReset", "critical", "reset", "XID error that needs a GPU reset",
          "drain the GPU and reset it.",
          Proof((("xid-48", {}),), {"xid": "48"})),
    _tier("GPUXidDrain", "warning", "drain", "XID error that needs the GPU drained",
          "let running work finish, then restart it elsewhere and reset the GPU.",
          Proof((("xid", {"code": 74}),), {"xid": "74"})),
    _tier("GPUXidNotify", "warning", "notify", "XID error that needs a look, not a GPU action",
          "see the runbook for what NVIDIA's catalog asks for this code.",
          Proof((("xid", {"code": 78}),), {"xid": "78"})),
    _tier("GPUXidApplication", "info", "notify", "XID error of the application, not of the GPU",
          "the application on it faulted; its owners restart it, the GPU stays in service.",
          Proof((("xid", {"code": 31}),), {"xid": "31"})),
    _tier("GPUXidUnknown", "warning", "notify", "XID error outside NVIDIA's catalog",
          "look the code up; gpuobs does not know what the GPU needs.",
          Proof((("xid", {"code": xid_catalog.NVML_UNKNOWN_XID}),), {"xid": str(xid_catalog.NVML_UNKNOWN_XID)}),
          unknown=True),
)


def inhibitions(enabled: set[str]) -> list[tuple[tuple[str, ...], tuple[int, ...], str, int]]:
    """From the catalog's relations: (source alerts, source codes, target alert, target code) for each
    consequence (follow-on) or superseded code that raises an alert, while its causes raise one of the
    `enabled` alerts. A target raising nothing needs no inhibition."""
    found = []
    for relation in xid_catalog.RELATIONS:
        if relation.kind not in ("follow_on", "supersedes"):
            continue
        target = alert_for(relation.target)
        sources = tuple(sorted(c for c in relation.sources if alert_for(c) in enabled))
        if target in enabled and sources:
            source_alerts = tuple(a.name for a in ALERTS if a.name in {alert_for(c) for c in sources})
            found.append((source_alerts, sources, target, relation.target))
    return found
