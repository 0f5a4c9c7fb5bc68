"""XID alerts: driver-reported GPU errors, one alert per tier of what the GPU then needs."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.promql import quote, seconds, sel
from gpuobs.promtool_cases import STEP, Case, flat
from gpuobs.series import each_setup

XID_WINDOW = "15m"
PANEL = (links.GPU_DETAIL, links.XID_PANEL)
NEEDS = (("xid_errors", "xid_window_count", "xid_last"),)


def _xid(n, codes) -> str | None:
    """XIDs of one tier: our counter's increase, else dcgm-exporter's windowed count, else the
    last-value gauge (which misses a second XID of the same code)."""
    h = n.host
    pattern = quote("|".join(str(c) for c in codes))
    clauses, seen = [], []
    if n.serves("xid_errors"):
        counter = sel(n.xid_errors, n.job, f"xid=~{pattern}")
        clauses += [f"increase({counter}[{XID_WINDOW}]) > 0", f"{counter} > 0 unless {counter} offset {XID_WINDOW}"]
        seen.append(sel(n.xid_errors, n.job))
    if n.serves("xid_window_count"):
        # A gauge over dcgm-exporter's sliding window (default 5m): it falls again, so never rate() it.
        window = sel(n.xid_window_count, n.job, f"xid=~{pattern}")
        clauses.append(f"max without ({n.dropped}, window_size_in_ms) (max_over_time({window}[{XID_WINDOW}])) > 0")
        seen.append(sel(n.xid_window_count, n.job))
    if n.serves("xid_last"):
        gauge = "\nor\n".join(f'label_replace({n.gpu("xid_last")} == {c}, "xid", "{c}", "", "")' for c in codes)
        if seen:
            gauge = f"(\n{gauge}\n) unless on (cluster, {h}, gpu) ({' or '.join(seen)})"
        clauses.append(gauge)
    return "\nor\n".join(f"({c})" if "\n" in c or " or " in c else c for c in clauses) if clauses else None


def _expression(d, model, ns) -> str:
    return each_setup(ns, lambda n: _xid(n, d.xid_codes))


def _cases(b, alert, gpu, t):
    """Every code of the tier on its own GPU, through each XID series the setup serves."""
    n = b.n
    host = b.host_of(gpu)
    codes = [str(c) for c in alert.definition.xid_codes]
    other = "13"  # graphics engine exception: an application fault, not a GPU fault
    end = b.due(alert) + 9 * STEP
    # The counters hold an XID for the rule's window: a longer `for` needs it to recur (each scrape here).
    once = end <= seconds(XID_WINDOW)
    rising = f"1x3 2x{end // STEP}" if once else f"1+1x{end // STEP}"
    appearing = f"_x3 1x{end // STEP}" if once else f"_x3 1+1x{end // STEP}"
    tier = f"{alert.name} {n.exporter.job} XID {', '.join(codes)}"
    # Each code on a GPU of its own: the last-value gauge holds one code per GPU.
    gpus = [b.gpu_labels(host, i) for i in range(len(codes))]
    cases = []

    def fires(name: str, metric: str, values, value_of) -> None:
        case = Case(f"{tier} {name}: fires")
        for labels, code in zip(gpus, codes, strict=True):
            case.add(metric, {**labels, **({"xid": code} if metric != n.xid_last else {})}, values(code))
        case.checks.append((end, alert.name, [b.expect(alert, g, value_of(c), {"xid": c})
                                              for g, c in zip(gpus, codes, strict=True)]))
        cases.append(case)

    def quiet(name: str, metric: str, labels: dict, values: str) -> None:
        case = Case(f"{alert.name} {n.exporter.job} XID {other} {name}: quiet")
        case.add(metric, labels, values)
        case.checks.append((end, alert.name, []))
        cases.append(case)

    if n.serves("xid_errors"):
        # The value, an increase or a count, shows in no annotation.
        fires("counters rise", n.xid_errors, lambda c: rising, lambda c: 1)
        fires("counters appear at 1", n.xid_errors, lambda c: appearing, lambda c: 1)
        quiet("counter only", n.xid_errors, {**gpus[0], "xid": other}, f"1x3 2x{end // STEP}")
    if n.serves("xid_window_count"):
        window = {"window_size_in_ms": "300000"}
        fires("in dcgm-exporter's windowed count", n.xid_window_count,
              lambda c: f"_x3 1x{end // STEP}", lambda c: 1)
        cases[-1].series = [(m, {**lbls, **window}, v) for m, lbls, v in cases[-1].series]
        quiet("in the windowed count", n.xid_window_count, {**gpus[0], "xid": other, **window},
              f"_x3 1x{end // STEP}")
    if n.serves("xid_last"):
        fires("in the last-value gauge", n.xid_last, lambda c: flat(int(c), end + STEP), int)
        quiet("in the last-value gauge", n.xid_last, gpus[0], flat(int(other), end + STEP))
    return cases


def _tier(name: str, severity: str, action: str, summary: str, advice: str, codes: tuple[int, ...],
          proof: Proof) -> AlertDef:
    return AlertDef(name, "xid", severity, action, "0s", summary,
                    f"{GPU_TEXT} raised XID {{{{ $labels.xid }}}}; {advice}",
                    panel=PANEL, proof=proof, xid_codes=codes, needs=NEEDS, cases_per="setup",
                    expression=_expression, cases=_cases)


ALERTS = (
    _tier("GPUXidQuarantine", "critical", "quarantine", "XID error that takes the GPU out of service",
          "the GPU needs to be taken out of service and inspected.", (64, 79),
          Proof((("xid", {"code": 64}),), {"xid": "64"})),
    _tier("GPUXidReset", "critical", "reset", "XID error that needs a GPU reset",
          "drain the GPU and reset it.", (48, 61, 62, 95, 119, 120),
          Proof((("xid-48", {}),), {"xid": "48"})),
    _tier("GPUXidDrain", "warning", "drain", "XID error that needs the GPU drained",
          "let running work finish, then restart it elsewhere.", (63, 74, 92, 94),
          Proof((("xid", {"code": 74}),), {"xid": "74"})),
)
