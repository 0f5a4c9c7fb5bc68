"""Thermal alerts: a GPU at or past its warning or critical temperature, or heading for it."""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, VALUE_TEXT, AlertDef, Proof
from gpuobs.promql import num, seconds, sel
from gpuobs.promtool_cases import STEP, Case, flat, hold_of
from gpuobs.series import by_model, past_warning, threshold_of
from gpuobs.tiers import SLOW, tier_seconds

PANEL = (links.GPU_DETAIL, links.TEMPERATURE_PANEL)
# GPUThermalCriticalPredicted looks at GPUs at most this far below their critical threshold.
PREDICTION_NEAR_CELSIUS = 15
NEEDS = (("gpu_temp",),)


def _thermal_cases(critical: bool):
    """Each source of the threshold a setup serves: the model's figure, the GPU's reported max
    operating temperature, its margin to T.Limit."""
    def cases(b, alert, gpu, t):
        n = b.n
        labels = b.gpu_labels(b.host_of(gpu))
        level = "critical" if critical else "warning"
        fallback = t.gpu_temp_critical if critical else t.gpu_temp_warning
        out = b.gauge_alert(alert, f"{n.exporter.job} {gpu.key} {level} figure {num(fallback)} C", labels,
                            [(n.gpu_temp, labels, fallback)], [(n.gpu_temp, labels, fallback - 1)], fallback,
                            quiet_name=f"at {num(fallback - 1)} C")
        if n.serves("gpu_max_op_temp"):
            max_op = 90
            hot = max_op if critical else max_op - t.gpu_temp_max_op_offset_warning
            out += b.gauge_alert(
                alert, f"{n.exporter.job} {gpu.key} {level} from reported max operating temperature", labels,
                [(n.gpu_temp, labels, hot), (n.gpu_max_op_temp, labels, max_op)],
                [(n.gpu_temp, labels, hot - 1.5), (n.gpu_max_op_temp, labels, max_op)], hot)
        if n.serves("gpu_temp_margin"):
            margin = t.gpu_temp_margin_critical if critical else t.gpu_temp_margin_warning
            out += b.gauge_alert(
                alert, f"{n.exporter.job} {gpu.key} {level} from T.Limit margin", labels,
                [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin)],
                [(n.gpu_temp, labels, 70), (n.gpu_temp_margin, labels, margin + 1)], 70)
        return out

    return cases


def trend_window(model) -> int:
    """Seconds of recorded temperature the prediction reads: three samples of the tier that records
    it. Shorter than the alert's `for` (5 minutes), so the step of a job starting leaves the window
    before the alert can fire: a 10-minute line through such a step kept predicting the threshold
    for 8 minutes after it, and the alert fired on every job start of a GPU whose loaded plateau
    sat near the threshold (a real H200 at 63 C, 15 C under its T.Limit). A failing cooler keeps
    the temperature rising, and with it the line through the last three samples."""
    return 3 * tier_seconds(model.prometheus.evaluation_interval, SLOW)


def _predicted(d, model, ns) -> str:
    temp = "gpu:temperature:celsius"
    window = trend_window(model)

    def horizon_prediction(matcher: str, horizon: str) -> str:
        """Only near the limit: a GPU warming up after a job starts rises steeply far below it."""
        series = sel(temp, matcher)
        critical = "gpu:temperature_critical_threshold:celsius"
        # Its distance to the threshold is read once, both bounds filtering it in turn.
        return (f"predict_linear({series}[{window}s], {int(seconds(horizon))}) >= {critical}\n"
                f"and {series} - {critical} >= -{PREDICTION_NEAR_CELSIUS} <= 0")

    return by_model(model.gpu_models, threshold_of(model, "thermal_prediction_horizon"), horizon_prediction)


def _predicted_cases(b, alert, gpu, t):
    """Rising steadily, a GPU is predicted to cross its critical threshold for at most the
    horizon before it does: the alert fires on the way up where `for` fits in that time, else
    only for a GPU that levels off at its threshold."""
    n = b.n
    labels = b.gpu_labels(b.host_of(gpu))
    critical = t.gpu_temp_critical
    horizon = int(seconds(t.thermal_prediction_horizon)) / 60  # minutes, as the rule rounds it
    # Rising 1 C/min: after 5 minutes both predicted to cross and near enough to count.
    start = critical - min(horizon, PREDICTION_NEAR_CELSIUS) - 5
    end = 300 + b.due(alert) + STEP
    if start + end / 60 <= critical:
        fire = Case(f"{alert.name} {n.exporter.job} {gpu.key}: rising 1 C/min towards {num(critical)} C, fires")
        fire.add(n.gpu_temp, labels, f"{num(start)}+0.25x{end // STEP + 1}")
        fire.checks.append((end, alert.name, [b.expect(alert, labels, start + end / 60 + horizon)]))
    else:
        fire, end = _levelling_off(b, alert, gpu, labels, critical)
    # A job starting: the GPU steps from idle to its loaded plateau within seconds and stays there
    # (a real H200 went from 34 to 57 C in 4 s under bf16 matrix products, then held 58 C), with
    # the plateau as close to the threshold as the alert looks. Quiet at every minute of it, and
    # for 10 minutes after the step: a 10-minute line through it fired 8 to 10 minutes after it.
    plateau = critical - PREDICTION_NEAR_CELSIUS
    job_end = 120 + 600 + b.due(alert)
    quiet = Case(f"{alert.name} {n.exporter.job} {gpu.key}: a job starts, a step to a steady {num(plateau)} C, quiet")
    quiet.add(n.gpu_temp, labels, f"{flat(plateau - 25, 120)} {flat(plateau, job_end)}")
    quiet.checks += [(t, alert.name, []) for t in range(180, job_end + 1, 60)]
    warming = Case(f"{alert.name} {n.exporter.job} {gpu.key}: warming up steeply far below the threshold, quiet")
    warming.add(n.gpu_temp, labels, f"{num(critical - PREDICTION_NEAR_CELSIUS - 45)}+1x{end // STEP + 1}")
    warming.checks.append((end, alert.name, []))
    return [fire, quiet, warming]


def _levelling_off(b, alert, gpu, labels, critical) -> tuple[Case, int]:
    """Rising 1 C/min to exactly the threshold, then held there: from then on the temperature
    is not past it and the line through the trend window reaches it within any horizon. It is
    checked once that window is flat, where the prediction is the threshold itself."""
    n = b.n
    end = 300 + max(trend_window(b.model), hold_of(alert)) + b.chains[alert.name] * STEP
    case = Case(f"{alert.name} {n.exporter.job} {gpu.key}: rising 1 C/min to {num(critical)} C and staying "
                "there, fires")
    case.add(n.gpu_temp, labels, f"{num(critical - 5)}+0.25x19 {num(critical)}x{(end - 300) // STEP + 1}")
    case.checks.append((end, alert.name, [b.expect(alert, labels, critical)]))
    return case, end


# A runaway that levels off between the warning and the critical threshold.
_WARM = Proof((("thermal-runaway", {"settle_c": 82.5}),))
# Cooling failing slowly: from 72 C, inside the last 15 C before the (A100's) threshold, a steady
# 1.5 C/min whatever the load, levelling off just under it. A fast runaway is a step, which leaves
# the prediction's window before its `for` is up.
_RISING = Proof((("thermal-runaway", {"from_c": 72.0, "rate_c_per_min": 1.5, "settle_c": 84.0}),))

ALERTS = (
    AlertDef("GPUThermalWarning", "thermal", "warning", "notify", "60s",
             "GPU temperature near its operating limit",
             f"{GPU_TEXT} is at {VALUE_TEXT} C, at or above its warning threshold.",
             panel=PANEL, proof=_WARM, needs=NEEDS,
             expression=lambda d, model, ns: past_warning(ns, "gpu_temp", ""), cases=_thermal_cases(critical=False)),
    AlertDef("GPUThermalCritical", "thermal", "critical", "throttle", "30s",
             "GPU temperature at its operating limit",
             f"{GPU_TEXT} is at {VALUE_TEXT} C, at or past its critical threshold; the driver is about to slow it "
             "down.",
             panel=PANEL, proof=Proof((("thermal-runaway", {}),)), needs=NEEDS,
             expression=lambda d, model, ns: past_warning(ns, "gpu_temp", "critical"),
             cases=_thermal_cases(critical=True)),
    AlertDef("GPUThermalCriticalPredicted", "thermal", "warning", "notify", "5m",
             "GPU temperature trending towards its critical threshold",
             f"{GPU_TEXT} is predicted to reach {VALUE_TEXT} C, its critical threshold or above, within the "
             "prediction horizon.",
             panel=PANEL, proof=_RISING, needs=NEEDS, expression=_predicted, cases=_predicted_cases),
)
