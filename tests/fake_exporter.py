"""A catalog-driven stand-in for a GPU exporter, for tests that need exporter-shaped data in a
real Prometheus: every GPU-level and exporter-level catalog metric, in the dcgm profile's names
and labels, one HTTP server per host on 127.0.0.1. Temperatures rise slowly while it runs, so
trend-based rules (time to critical, forecasts) have something to compute. The first GPUs carry
workload labels as the exporters' pod and job mappings put them: a busy pod, an idle one (its
GPU nearly unused) and an HPC job, for the efficiency rules.
"""

from __future__ import annotations

import http.server
import threading
import time

from gpuobs import catalog

EXTRA_LABEL_VALUES = {"reason": "hw_thermal", "xid": "13", "err_code": "13", "err_msg": "", "field": "power",
                      "driver_version": "550.54.15", "serial": "1320000000001", "vbios_version": "92.00.45.00.06",
                      "version": "0.1.0", "source": "test", "gpu_model": "A100-SXM4-80GB", "gpu": "0",
                      "pid": "4242", "process_name": "python3"}
RISING_COUNTERS = {"total_energy", "nvlink_bandwidth"}
VALUES = {"gpu_temp": 55, "gpu_temp_margin": 30, "gpu_max_op_temp": 85, "power_usage": 250,
          "enforced_power_limit": 400, "power_limit": 400, "fb_used": 20000, "fb_free": 60000, "gpu_util": 70,
          "gpu_up": 1, "sm_clock": 1410, "mem_clock": 1593, "exporter_collection_duration": 0.004,
          "exporter_build_info": 1, "gpu_info": 1}
# GPU index -> the workload holding it; IDLE_GPU's utilization stays at IDLE_UTIL percent.
WORKLOADS = {0: {"pod": "train-0", "namespace": "ml", "container": "trainer"},
             1: {"pod": "notebook-1", "namespace": "research", "container": "notebook"},
             2: {"hpc_job": "4242"}}
IDLE_GPU, IDLE_UTIL = 1, 1


def exposition(host: str, model_name: str, gpus: int, elapsed: float) -> str:
    profile = catalog.GPUOBS_PROFILE
    lines = []
    for metric in catalog.METRICS:
        if not profile.serves(metric.key):
            continue
        name = profile.metric(metric.key)
        lines.append(f"# TYPE {name} {'gauge' if metric.type == catalog.INFO else metric.type}")
        value = VALUES.get(metric.key, 0)
        if metric.key == "gpu_temp":
            value = 55 + elapsed * 0.05  # rising 3 C a minute
        elif metric.key == "gpu_temp_margin":
            value = 30 - elapsed * 0.05
        elif metric.key == "exporter_last_success":
            value = time.time()
        elif metric.key in RISING_COUNTERS:
            value = int(elapsed * 1000)  # a healthy GPU's counters; error counters stay at 0
        if metric.level == catalog.EXPORTER:
            labels = {label: EXTRA_LABEL_VALUES[label] for label in metric.extra_labels}
            lines.append(_sample(name, labels, value))
            continue
        for index in range(gpus):
            labels = {profile.label("gpu"): str(index), profile.label("uuid"): f"GPU-{host}-{index:04d}",
                      profile.label("pci_bus_id"): f"00000000:{index + 7:02X}:00.0",
                      profile.label("device"): f"nvidia{index}", profile.label("model_name"): model_name,
                      profile.label("hostname"): host}
            labels.update({label: EXTRA_LABEL_VALUES[label] for label in metric.extra_labels})
            labels.update(WORKLOADS.get(index, {}))
            idle = metric.key == "gpu_util" and index == IDLE_GPU
            lines.append(_sample(name, labels, IDLE_UTIL if idle else value))
    return "\n".join(lines) + "\n"


def _sample(name: str, labels: dict, value) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{text}}} {value}"


class FakeExporter:
    """One host's exporter; `with FakeExporter(...) as e: e.target`."""

    def __init__(self, host: str, model_name: str, gpus: int):
        started = time.monotonic()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = exposition(host, model_name, gpus, time.monotonic() - started).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeExporter:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
