"""The generated demo configuration in a real Prometheus: it loads, scrapes, and every rule
evaluates without error on data shaped like a real exporter's (built from the catalog)."""

import time

import pytest
import yaml
from fake_exporter import FakeExporter

from conftest import ROOT, faster_rule_files, needs
from gpuobs.generate import load_model
from gpuobs.generators.rules import EVALUATION_ORDER
from gpuobs.promql import seconds
from gpuobs.stack import PrometheusServer

pytestmark = needs("prometheus")

@pytest.fixture
def exporter():
    with FakeExporter("gpu-node-01", "NVIDIA A100-SXM4-80GB", 8) as fake:
        yield fake.target


def test_demo_rules_evaluate_cleanly_on_exporter_shaped_data(tmp_path, exporter, backend):
    source = ROOT / "generated" / "demo" / "prometheus"
    config = yaml.safe_load((source / "prometheus.yml").read_text())
    # Same config, faster clock, pointed at the test exporter instead of 127.0.0.1:9400.
    generated_every = seconds(config["global"]["evaluation_interval"])
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = faster_rule_files(source, config["rule_files"], tmp_path, 1 / generated_every)
    for job in config["scrape_configs"]:
        if job["job_name"] == "gpu-exporter":
            job["static_configs"][0]["targets"] = [exporter]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))

    with PrometheusServer(path, backend=backend, mounts=[tmp_path, source]) as prom:
        # Rule groups run on clocks of their own: wait until each has seen scraped data (the fleet
        # counts say 0 until the cluster counts they sum exist).
        needed = ["gpu:temperature_warning_threshold:celsius", "gpu:health:score", "fleet:gpus:count == 8",
                  "fleet:gpus_expected:count", "fleet:gpus_healthy:count == 8"]
        def settled() -> bool:
            every_rule_ran = all(r["health"] != "unknown" for g in prom.api("rules")["groups"] for r in g["rules"])
            return every_rule_ran and all(prom.query(q) for q in needed)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not settled():
            time.sleep(0.5)
        groups = prom.api("rules")["groups"]
        assert {g["name"] for g in groups} == set(EVALUATION_ORDER)
        broken = [(r.get("name"), r.get("lastError")) for g in groups for r in g["rules"] if r["health"] == "err"]
        assert all(r["health"] == "ok" for g in groups for r in g["rules"])
        assert not broken, f"rules failing to evaluate: {broken}\n{prom.log()[-3000:]}"

        assert float(prom.query("fleet:gpus:count")[0]["value"][1]) == 8
        assert float(prom.query("fleet:gpus_expected:count")[0]["value"][1]) == 8
        scores = prom.query("gpu:health:score")
        assert len(scores) == 8 and all(float(s["value"][1]) == 1 for s in scores)
        thresholds = prom.query("gpu:temperature_warning_threshold:celsius")
        assert {float(t["value"][1]) for t in thresholds} == {80}, "reported max op 85 - 5"
        # The exporter's idle notebook pod (namespace research) is an idle allocation: GPUAllocatedIdle
        # may be pending there, and only there.
        firing = [a for a in prom.query('ALERTS{alertname!="GPUExporterDown"}')
                  if (a["metric"]["alertname"], a["metric"].get("namespace")) != ("GPUAllocatedIdle", "research")]
        assert firing == [], f"a healthy GPU raised alerts: {firing}"
        # The demo's node-exporter target does not exist here: its scrape fails, the GPU one does not.
        assert scraped_gpu_hosts(prom) == {"gpu-node-01"}


def scraped_gpu_hosts(prom) -> set:
    return {r["metric"]["host"] for r in prom.query('up{job="gpu-exporter"} == 1')}


def test_demo_model_is_one_host_of_eight_a100():
    model = load_model(ROOT / "specs" / "demo.yaml")
    assert [(h.name, h.gpu.key, h.gpu_count) for h in model.hosts] == [("gpu-node-01", "A100-SXM4-80GB", 8)]
