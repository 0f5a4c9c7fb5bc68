"""The inverse of tests/test_e2e_alerts.py's proofs, on the same scaled demo fleet and stack: a
healthy fleet of 80 GPUs raises nothing but blind spots and idle allocations. A module of its own
so that it runs beside the proofs, not after them: both mostly wait on their servers."""

from __future__ import annotations

import time

import pytest
from test_e2e_alerts import IDLE_ALERT, IDLE_GPU, RECEIVERS, SETUPS, Stack

from conftest import needs, until
from exporters.simulator.fleet import IDLE_EVERY
from gpuobs.alerts import BLIND_ALERT
from gpuobs.promql import seconds

pytestmark = [needs("prometheus"), needs("prometheus-alertmanager"), pytest.mark.slow]

# The healthy fleet: eight gpuobs-exporter hosts, and one host of each dcgm-exporter setup.
HEALTHY = {**{f"gpu-node-{i:02d}": 8 for i in range(1, 9)}, **{setup.host("-01"): 8 for setup in SETUPS[1:]}}
HEALTHY_EXPORTERS = {setup.host("-01"): setup.exporter for setup in SETUPS[1:]}


def test_healthy_fleet_raises_nothing_but_blindness_and_idle_pods(tmp_path, backend):
    """Ten hosts of eight GPUs under their simulated workloads and pods for longer than the longest
    scaled `for`: from the moment every GPU is evaluated, no alert fires at any moment and no
    notification goes out, except GPUAlertBlind for the dcgm-exporter job with default counters
    (exactly one per alert those counters cannot serve) and GPUAllocatedIdle on exactly the
    GPUs an idle notebook pod holds, on every exporter setup; the training pods' GPUs stay quiet.
    Neither counts against a GPU's health. Pending is allowed: it is `for` doing its job, e.g.
    GPUExporterDown for a scrape that a starved 2-core machine could not answer within its 1 s timeout."""
    gpus = sum(HEALTHY.values())
    expected = {(BLIND_ALERT, None, None, alertname) for setup in SETUPS for alertname in setup.blind}
    expected |= {(IDLE_ALERT, host, str(gpu), None) for host, count in HEALTHY.items() for gpu in range(count)
                 if gpu % IDLE_EVERY == IDLE_GPU}

    def key(labels: dict) -> tuple:
        return labels.get("alertname"), labels.get("host"), labels.get("gpu"), labels.get("blind_alert")

    def unexpected(alerts: list[dict]) -> list[dict]:
        return [a for a in alerts if key(a) not in expected]

    with Stack(tmp_path, HEALTHY, backend, HEALTHY_EXPORTERS) as stack:
        stack.wait_until_evaluated(gpus)
        up_since = time.monotonic()
        longest = max(seconds(a.for_) for a in stack.model.alerts)
        while time.monotonic() < up_since + longest + 10:
            firing = [s["metric"] for s in stack.prometheus.query('ALERTS{alertstate="firing"}')]
            assert unexpected(firing) == []
            time.sleep(1)
        watched = int(time.monotonic() - up_since) - 1
        fired = stack.prometheus.query(f'ALERTS{{alertstate="firing"}}[{watched}s]')
        assert unexpected([s["metric"] for s in fired]) == [], [(s["metric"], s["values"]) for s in fired]

        def firing_expected():
            return {key(s["metric"]) for s in stack.prometheus.query('ALERTS{alertstate="firing"}')}

        until(lambda: firing_expected() == expected, 30, lambda: f"firing {sorted(firing_expected() ^ expected)} "
                                                                f"beyond or short of the expected {len(expected)}")
        # Neither speaks of the GPU itself: every GPU still counts as healthy.
        assert stack.query("fleet:gpus_healthy:count") == [gpus]

        def notified() -> set:
            return {key(a["labels"]) for _, body in stack.sink.all() for a in body["alerts"]}

        until(lambda: notified() == expected, 30, lambda: f"notified {sorted(notified() ^ expected)} beyond or short "
                                                          f"of the expected")
        # No team owns these hosts: both go to the fleet's warning receiver.
        assert {(path, a["labels"]["alertname"]) for path, body in stack.sink.all() for a in body["alerts"]} \
            <= {(RECEIVERS["warning"], BLIND_ALERT), (RECEIVERS["warning"], IDLE_ALERT)}
