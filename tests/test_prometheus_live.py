"""The generated demo configuration in a real Prometheus: it loads, scrapes, and every rule
evaluates without error on data shaped like a real exporter's (built from the catalog)."""

import http.server
import threading
import time

import pytest
import yaml

from conftest import ROOT, needs
from gpuobs import catalog
from gpuobs.generate import load_model
from gpuobs.stack import PrometheusProcess

pytestmark = needs("prometheus")

EXTRA_LABEL_VALUES = {"reason": "hw_thermal", "xid": "13", "err_code": "13", "err_msg": "", "field": "power",
                      "driver_version": "550.54.15", "serial": "1320000000001", "vbios_version": "92.00.45.00.06",
                      "version": "0.1.0", "source": "test", "gpu_model": "A100-SXM4-80GB"}
VALUES = {"gpu_temp": 55, "gpu_temp_margin": 30, "gpu_max_op_temp": 85, "power_usage": 250, "enforced_power_limit": 400,
          "power_limit": 400, "fb_used": 20000, "fb_free": 60000, "gpu_util": 70, "gpu_up": 1}


def exposition(host: str, gpus: int) -> str:
    """Every GPU-level catalog metric for `gpus` GPUs, in the dcgm profile's names and labels."""
    profile = catalog.PROFILES["dcgm"]
    lines = []
    for metric in catalog.METRICS:
        if metric.level not in (catalog.GPU, catalog.INSTANCE) or metric.origin == "rules":
            continue
        name = profile.metric(metric.key)
        lines.append(f"# TYPE {name} {'gauge' if metric.type == catalog.INFO else metric.type}")
        for index in range(gpus):
            labels = {profile.label("gpu"): str(index), profile.label("uuid"): f"GPU-{index:08d}-live",
                      profile.label("pci_bus_id"): f"00000000:{index + 7:02X}:00.0",
                      profile.label("device"): f"nvidia{index}",
                      profile.label("model_name"): "NVIDIA A100-SXM4-80GB", profile.label("hostname"): host}
            labels.update({label: EXTRA_LABEL_VALUES[label] for label in metric.extra_labels})
            text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {VALUES.get(metric.key, 1 if metric.type == catalog.INFO else 0)}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def exporter():
    body = exposition("gpu-node-01", 8).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_demo_rules_evaluate_cleanly_on_exporter_shaped_data(tmp_path, exporter):
    source = ROOT / "generated" / "demo" / "prometheus"
    config = yaml.safe_load((source / "prometheus.yml").read_text())
    # Same config, faster clock, pointed at the test exporter instead of 127.0.0.1:9400.
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(source / f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        if job["job_name"] == "gpu-exporter":
            job["static_configs"][0]["targets"] = [exporter]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))

    with PrometheusProcess(path) as prom:
        # Rule groups run on clocks of their own: wait until each has seen scraped data.
        needed = ["gpu:temperature_warning_threshold:celsius", "gpu:health:score", "fleet:gpus:count",
                  "fleet:gpus_expected:count", "fleet:gpus_healthy:count"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(prom.query(q) for q in needed):
            time.sleep(0.5)
        groups = prom.api("rules")["groups"]
        assert {g["name"] for g in groups} == {"gpuobs.inventory", "gpuobs.thresholds", "gpuobs.gpu",
                                               "gpuobs.health", "gpuobs.aggregates", "gpuobs.alerts"}
        broken = [(r.get("name"), r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
        assert not broken, f"rules failing to evaluate: {broken}\n{prom.log()[-3000:]}"

        assert float(prom.query("fleet:gpus:count")[0]["value"][1]) == 8
        assert float(prom.query("fleet:gpus_expected:count")[0]["value"][1]) == 8
        scores = prom.query("gpu:health:score")
        assert len(scores) == 8 and all(float(s["value"][1]) == 1 for s in scores)
        thresholds = prom.query("gpu:temperature_warning_threshold:celsius")
        assert {float(t["value"][1]) for t in thresholds} == {80}, "reported max op 85 - 5"
        firing = prom.query('ALERTS{alertname!="GPUExporterDown"}')
        assert firing == [], f"a healthy GPU raised alerts: {firing}"
        # The demo's node-exporter target does not exist here: its scrape fails, the GPU one does not.
        assert scraped_gpu_hosts(prom) == {"gpu-node-01"}


def scraped_gpu_hosts(prom) -> set:
    return {r["metric"]["host"] for r in prom.query('up{job="gpu-exporter"} == 1')}


def test_demo_model_is_one_host_of_eight_a100():
    model = load_model(ROOT / "specs" / "demo.yaml")
    assert [(h.name, h.gpu.key, h.gpu_count) for h in model.hosts] == [("gpu-node-01", "A100-SXM4-80GB", 8)]
