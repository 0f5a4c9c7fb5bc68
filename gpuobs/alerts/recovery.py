"""Recovery action alert: the driver says what a GPU needs after an uncorrectable error (a reset,
a reboot, a P2P drain), and the alert holds until the GPU reports that nothing more is needed.

Unlike an XID, which is an event the windowed XID alerts forget after their window, this is a
level the driver clears only once the action was done. Where a GPU does not serve it (older
drivers, DCGM before 4.5, dcgm-exporter without the field in its counters CSV) the XID tiers
still alert, so this alert is absent there, not blind.
"""

from __future__ import annotations

from gpuobs import links
from gpuobs.alerts.base import GPU_TEXT, AlertDef, Proof
from gpuobs.promtool_cases import STEP, Case, flat
from gpuobs.series import per_setup

GPU_RESET, DRAIN_AND_RESET = 1, 4  # nvmlDeviceGpuRecoveryAction_t values (catalog: recovery_action)


def _cases(b, alert, gpu, t) -> list[Case]:
    """A GPU asked for a reset, which is then done, and one asked to drain and reset, which is not:
    both fire, and only the second still fires once the first GPU reports no action left."""
    metric = b.n.recovery_action
    host = b.host_of(gpu)
    done, pending = b.gpu_labels(host, 0), b.gpu_labels(host, 1)
    due = b.due(alert)
    reset = due + 4 * STEP
    end = reset + due + 2 * STEP
    name = f"{alert.name} {b.n.exporter.job}"
    fire = Case(f"{name}: action pending, fires until the GPU reports none")
    fire.add(metric, done, f"{GPU_RESET}x{reset // STEP - 1} 0x{(end - reset) // STEP + 1}")
    fire.add(metric, pending, flat(DRAIN_AND_RESET, end))
    fire.checks += [(due, alert.name, [b.expect(alert, done, GPU_RESET), b.expect(alert, pending, DRAIN_AND_RESET)]),
                    (reset + due, alert.name, [b.expect(alert, pending, DRAIN_AND_RESET)])]
    quiet = Case(f"{name}: no action needed, quiet").add(metric, done, flat(0, end))
    quiet.checks.append((end, alert.name, []))
    return [fire, quiet]


ALERTS = (
    AlertDef("GPURecoveryActionPending", "xid", "critical", "reset", "0s",
             "GPU waits for the recovery action its driver asks for",
             f"{GPU_TEXT} reports recovery action {{{{ printf \"%.0f\" $value }}}} pending (1 GPU reset, 2 node "
             "reboot, 3 drain P2P, 4 drain and reset; the runbook lists all); keep it out of service until done.",
             panel=(links.GPU_DETAIL, links.XID_PANEL), proof=Proof((("xid-48", {}),)),
             needs=(("recovery_action",),), fallbacks=("GPUXidReset", "GPUXidQuarantine"), cases_per="setup",
             expression=lambda d, model, ns: per_setup(
                 ns, d, "recovery_action", lambda n, _: n.gpu("recovery_action", where="> 0")),
             cases=_cases),
)
