"""The generated rules on this machine's real GPUs: a fleet spec of this one host, gpuobs-exporter
scraped by a real Prometheus on a faster clock, idle and then under a training-like load (the
framebuffer held as a caching allocator holds it, bf16 matrix products pinning power at its cap).

Every rule must evaluate without error, and no warning or critical alert may even be pending: a
healthy GPU doing its job is what the alerts must stay quiet on. Trend alerts alone may pend on the
step of the load's start, and must be quiet once it left their window. The figures the alerts' defaults
rest on (power against the limit, framebuffer fill, health components) are printed for the record.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from real_gpu import NEEDS_GPU, Exporter

from conftest import needs, one_second_config
from gpuobs.generate import load_model, render
from gpuobs.gpus import GPU_MODELS
from gpuobs.stack import PrometheusServer

pytestmark = [*NEEDS_GPU, needs("prometheus")]

IDLE_SECONDS = 20
LOAD_SECONDS = 240  # past the trend alerts' 3-minute window (the rules' windows stay wall-clock)
FILL = 0.97  # of the framebuffer, as PyTorch's and JAX's allocators leave it under training

_LOAD = """
import sys, time, torch
seconds, fill = float(sys.argv[1]), float(sys.argv[2])
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
c = a @ b
free, total = torch.cuda.mem_get_info()
hold = torch.empty(max(0, int(total * fill) - (total - free)), dtype=torch.uint8, device="cuda")
print(f"holding {hold.numel() / 2**30:.1f} GiB of {total / 2**30:.1f}", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(50):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
"""

# Figures printed per GPU at the end of each phase.
FIGURES = ("gpu:power_usage:ratio_of_limit", "gpu:framebuffer_used:ratio", "gpu:temperature:celsius",
           "gpu:clock_event_hw_throttle:active", "gpu:health:score", "gpu:health_thermal:score",
           "gpu:health_power:score", "gpu:health_memory:score", "gpu:health_ecc:score",
           "gpu:health_throttle:score")


def _spec_of_this_machine(exporter: Exporter) -> dict:
    """A one-host fleet of this machine's GPUs, described as an operator would: a GPU whose NVLinks
    NVML does not report (an SXM part passed alone to a virtual machine) is declared a model of
    the spec's own with no links; the built-in model would have GPUAlertBlind say its NVLink
    alerts cannot see it, which is true of such a GPU and not what this test is after."""
    names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip().splitlines()
    (name,) = set(names)
    models = [m for m in GPU_MODELS.values() if m.matches(name)]
    if not models:
        pytest.skip(f"no GPU model of the catalog is named '{name}'")
    model, spec = models[0], {}
    has_nvlink = b"DCGM_FI_DEV_NVLINK_" in exporter.scrape()
    print(f"{name}: {model.key}, {len(names)} GPU(s), NVLink counters {'served' if has_nvlink else 'absent'}")
    key = model.key
    if model.nvlink_links and not has_nvlink:
        key = f"{model.key}-no-nvlink"
        spec["gpu_models"] = [{
            "name": key, "nvml_name": name, "power_limit_watts": model.power_limit_watts,
            "gpu_temp_warning": model.gpu_temp_warning, "gpu_temp_critical": model.gpu_temp_critical,
            "memory_mib": model.memory_mib, "nvlink_links": 0, "reports_temp_margin": model.reports_temp_margin,
            "row_remapping": model.row_remapping}]
    return {**spec, "clusters": [{"name": "real"}],
            "hosts": [{"name": "real-gpu-test", "cluster": "real", "address": "127.0.0.1",
                       "gpus": {"model": key, "count": len(names)}}]}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """The generated configuration of a one-host fleet of this machine's GPUs, every group's interval
    divided by 15 (the tiers keep their ratios), scraping gpuobs-exporter here every second."""
    exporter = Exporter()
    folder = tmp_path_factory.mktemp("real-gpu-fleet")
    spec = folder / "real.yaml"
    spec.write_text(yaml.safe_dump(_spec_of_this_machine(exporter)))
    for path, text in render(load_model(spec)).items():
        if path.startswith("prometheus/"):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
    path = one_second_config(folder / "prometheus", folder / "fast", exporter.url.removeprefix("http://"))
    try:
        with PrometheusServer(path) as prom:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (
                    all(r["health"] != "unknown" for g in prom.api("rules")["groups"] for r in g["rules"])
                    and prom.query("gpu:present:bool") and prom.query("gpu:temperature_critical_threshold:celsius")):
                time.sleep(1)
            # A group's first evaluation can precede the GPU's presence, recorded by another group:
            # every group evaluates once more before the tests look.
            time.sleep(max(g["interval"] for g in prom.api("rules")["groups"]))
            yield prom
    finally:
        exporter.stop()


def _alarms(prom) -> set[tuple[str, str, str]]:
    """(alert, state, its labels but the fleet's) of every warning or critical alert pending or firing."""
    common = {"__name__", "alertname", "alertstate", "cluster", "host", "gpu_model", "job", "instance", "severity",
              "action", "family"}
    return {(s["metric"]["alertname"], s["metric"]["alertstate"],
             str({k: v for k, v in s["metric"].items() if k not in common}))
            for s in prom.query('ALERTS{severity=~"critical|warning"}')}


def _trend_alerts(prom) -> set[str]:
    """Alerts on a trend, which a job's start may set pending until its step leaves their window."""
    return {r["name"] for g in prom.api("rules")["groups"] for r in g["rules"]
            if r["type"] == "alerting" and "predict_linear" in r["query"]}


def _watch(prom, seconds_: float) -> set[tuple[str, str, str]]:
    seen: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + seconds_
    while time.monotonic() < deadline:
        seen |= _alarms(prom)
        time.sleep(2)
    return seen


def _print_figures(prom, phase: str) -> None:
    for name in FIGURES:
        for sample in sorted(prom.query(name), key=lambda s: s["metric"].get("gpu", "")):
            print(f"{phase}: GPU {sample['metric'].get('gpu')} {name} = {float(sample['value'][1]):.3f}")


def test_every_rule_evaluates_on_a_real_gpus_series(prometheus):
    groups = prometheus.api("rules")["groups"]
    broken = [(r.get("name"), r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not broken, f"rules not evaluating cleanly: {broken}\n{prometheus.log()[-3000:]}"
    assert prometheus.query("gpu:health:score"), "no health score recorded"


def test_no_alert_pends_on_an_idle_gpu(prometheus):
    seen = _watch(prometheus, IDLE_SECONDS)
    _print_figures(prometheus, "idle")
    assert not seen, f"warning or critical alerts on an idle GPU: {sorted(seen)}"


def test_no_alert_pends_under_a_training_like_load(prometheus):
    load = subprocess.Popen([sys.executable, "-c", _LOAD, str(LOAD_SECONDS), str(FILL)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = _watch(prometheus, LOAD_SECONDS)
        end = _alarms(prometheus)
        _print_figures(prometheus, "load")
        power = [float(s["value"][1]) for s in prometheus.query("max_over_time(gpu:power_usage:ratio_of_limit[1m])")]
        fill = [float(s["value"][1]) for s in prometheus.query("max_over_time(gpu:framebuffer_used:ratio[1m])")]
    finally:
        output, _ = load.communicate(timeout=LOAD_SECONDS + 120)
    print(output)
    assert load.returncode == 0, f"the load did not run:\n{output[-2000:]}"
    print(f"load: highest power / limit {max(power):.3f}, highest framebuffer fill {max(fill):.3f}")
    assert max(fill) > FILL - 0.05, "the framebuffer was not held: the test did not load the GPU as training does"
    trend = _trend_alerts(prometheus)
    print(f"load: trend alerts pending on the job's start: {sorted(a for a in seen if a[0] in trend)}")
    assert not [a for a in seen if a[0] not in trend or a[1] == "firing"], \
        f"warning or critical alerts under a training-like load: {sorted(seen)}"
    assert not end, f"alerts still pending once the load's start left every trend window: {sorted(end)}"
