"""The simulator under the generated demo configuration in a real Prometheus: every rule
evaluates, a healthy fleet raises no alert, and faults raise the alerts made for them."""

import time

import pytest
import yaml

from conftest import ROOT, faster_rule_files, needs, wait_for
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import from_spec
from exporters.simulator.runtime import SimClock, Simulation
from gpuobs.promql import seconds
from gpuobs.stack import PrometheusServer

pytestmark = [needs("prometheus"), pytest.mark.slow]



def test_demo_rules_on_the_simulator_stay_quiet_until_faults_raise_their_alerts(tmp_path):
    source = ROOT / "generated" / "demo" / "prometheus"
    fleet = Fleet(from_spec(ROOT / "specs" / "demo.yaml", base_port=0), seed=4, epoch=time.time())
    simulation = Simulation(fleet, SimClock(), interval=0.2).start()
    try:
        config = yaml.safe_load((source / "prometheus.yml").read_text())
        generated_every = seconds(config["global"]["evaluation_interval"])
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = faster_rule_files(source, config["rule_files"], tmp_path, 1 / generated_every)
        config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "gpu-exporter"]
        config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{simulation.endpoints[0].port}"]
        config["alerting"] = {"alertmanagers": []}
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
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
