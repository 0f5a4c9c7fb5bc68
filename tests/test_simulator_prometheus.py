"""The simulator under the generated demo configuration in a real Prometheus: every rule
evaluates, a healthy fleet raises no alert, and faults raise the alerts made for them."""

import time

import pytest

from conftest import ROOT, needs, one_second_config, wait_for
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import from_spec
from exporters.simulator.runtime import SimClock, Simulation
from gpuobs.stack import PrometheusServer

pytestmark = [needs("prometheus"), pytest.mark.slow]



def test_demo_rules_on_the_simulator_stay_quiet_until_faults_raise_their_alerts(tmp_path):
    source = ROOT / "generated" / "demo" / "prometheus"
    fleet = Fleet(from_spec(ROOT / "specs" / "demo.yaml", base_port=0), seed=4, epoch=time.time())
    simulation = Simulation(fleet, SimClock(), interval=0.2).start()
    try:
        path = one_second_config(source, tmp_path, f"127.0.0.1:{simulation.endpoints[0].port}")
        with PrometheusServer(path) as prom:
            wait_for(prom, "gpu:health:score")
            wait_for(prom, "fleet:gpus_healthy:count == 8")
            # Groups of the slower tiers run on clocks of their own: wait until each rule has run.
            rules = lambda: [r for g in prom.api("rules")["groups"] for r in g["rules"]]  # noqa: E731
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(r["health"] == "unknown" for r in rules()):
                time.sleep(0.5)
            broken = [(r.get("name"), r.get("lastError")) for r in rules() if r["health"] != "ok"]
            assert not broken
            assert prom.query('ALERTS{alertstate="firing"}') == []
            fleet.start_fault("xid-79", "gpu-node-01", 3, {"lost_after_s": 0})
            fleet.start_fault("row-remap-failure", "gpu-node-01", 5)
            (xid,) = wait_for(prom, 'ALERTS{alertname="GPUXidQuarantine", alertstate="firing"}')
            assert (xid["metric"]["gpu"], xid["metric"]["xid"], xid["metric"]["host"]) == ("3", "79", "gpu-node-01")
            (remap,) = wait_for(prom, 'ALERTS{alertname="GPURowRemapFailure", alertstate="firing"}')
            assert remap["metric"]["gpu"] == "5"
            assert float(wait_for(prom, "fleet:gpus:count == 7")[0]["value"][1]) == 7, "the lost GPU is missing"
    finally:
        simulation.stop()
