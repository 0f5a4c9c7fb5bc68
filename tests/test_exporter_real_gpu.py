"""gpuobs-exporter on this machine's real GPUs: its readings against nvidia-smi's, its output
through promtool's lint, and an XID 31 provoked by an out-of-bounds write.

Skips at once where NVML finds no GPU or nvidia-smi is missing. Each check is bounded in time;
the exporter listens on a free port of 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from exposition_helpers import dcgm_compatibility_findings, find
from real_gpu import NEEDS_GPU, Exporter

pytestmark = NEEDS_GPU
_QUERY = ("index", "temperature.gpu", "power.draw", "memory.used", "memory.total", "clocks.sm")


@pytest.fixture(scope="module")
def exporter():
    running = Exporter()
    yield running
    running.stop()


def nvidia_smi() -> dict[int, dict[str, float | None]]:
    """Per GPU index, the _QUERY fields; None where nvidia-smi has no number ([N/A], [Not Supported])."""
    result = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(_QUERY)}", "--format=csv,noheader,nounits"],
                            capture_output=True, text=True, timeout=60, check=True)
    readings = {}
    for line in result.stdout.strip().splitlines():
        values = [v.strip() for v in line.split(",")]
        parsed = {}
        for name, text in zip(_QUERY, values, strict=True):
            try:
                parsed[name] = float(text)
            except ValueError:
                parsed[name] = None
        readings[int(parsed["index"])] = parsed
    return readings


def _gpu_value(body: bytes, key: str, gpu: int) -> float | None:
    """The GPU-level sample (not a MIG instance's), None when the exporter does not serve it."""
    found = [s for s in find(body, key, gpu=gpu) if "GPU_I_ID" not in s.labels]
    return found[0].value if found else None


def test_readings_match_nvidia_smi(exporter):
    """nvidia-smi just before and just after a snapshot the exporter took in between: each reading
    must lie within the two, widened by the tolerance (readings move while the test runs)."""
    before = nvidia_smi()
    time.sleep(1.5)  # the exporter collects every second: its latest snapshot is now after `before`
    body = exporter.scrape()
    after = nvidia_smi()
    assert set(before) == set(after) and len(before) == exporter.gpus
    checks = {  # nvidia-smi field -> (catalog key, tolerance from the higher reading and the memory size)
        "temperature.gpu": ("gpu_temp", lambda high, total: 3),
        "power.draw": ("power_usage", lambda high, total: max(15, 0.10 * high)),
        "memory.used": ("fb_used", lambda high, total: 0.02 * total),
        "memory.total": ("fb_total", lambda high, total: 0.02 * total),
        "clocks.sm": ("sm_clock", lambda high, total: max(30, 0.05 * high)),  # clocks move in steps
    }
    compared = []
    for gpu in sorted(before):
        assert _gpu_value(body, "gpu_up", gpu) == 1, f"GPU {gpu} is served as down"
        total = after[gpu]["memory.total"] or before[gpu]["memory.total"] or 0
        for field, (key, tolerance) in checks.items():
            ours, low, high = _gpu_value(body, key, gpu), before[gpu][field], after[gpu][field]
            if ours is None or low is None or high is None:
                continue  # not on this GPU (memory of a MIG GPU is per instance; power on some boards)
            low, high = sorted((low, high))
            slack = tolerance(high, total)
            print(f"GPU {gpu} {field}: nvidia-smi {low:g}..{high:g}, gpuobs {ours:g} (±{slack:g})")
            assert low - slack <= ours <= high + slack, f"GPU {gpu} {key}: {ours} vs nvidia-smi {low}..{high}"
            compared.append(key)
    assert {"gpu_temp", "sm_clock"} <= set(compared), "the basic readings of at least one GPU were compared"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_promtool_finds_nothing_but_dcgm_exporters_own_naming(exporter):
    body = exporter.scrape()
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
    findings = {line.strip() for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()}
    assert findings - dcgm_compatibility_findings(body) == set()


# A write to an address no allocation maps: an MMU fault, which the driver reports as XID 31.
_KERNEL = "*(volatile int *)0x1000 = 1;"
_CUPY = f"""
import cupy
kernel = cupy.RawKernel('extern "C" __global__ void oob() {{ {_KERNEL} }}', "oob")
kernel((1,), (1,), ())
cupy.cuda.runtime.deviceSynchronize()
"""
_TORCH = f"""
import torch
oob = torch.cuda.jiterator._create_jit_fn("template <typename T> T oob(T x) {{ {_KERNEL} return x; }}")
oob(torch.zeros(1, device="cuda"))
torch.cuda.synchronize()
"""


def _out_of_bounds_script() -> str | None:
    """The write in CuPy, or else in PyTorch (its jiterator compiles with NVRTC, no nvcc needed)."""
    for name, script in (("cupy", _CUPY), ("torch", _TORCH)):
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, timeout=120)
        if probe.returncode == 0:
            return script
    return None


def _xid31(body: bytes) -> float:
    return sum(s.value for s in find(body, "xid_errors", xid=31))


def test_an_out_of_bounds_write_is_counted_as_xid_31(exporter):
    script = _out_of_bounds_script()
    if script is None:
        pytest.skip("neither CuPy nor PyTorch is importable")
    before = _xid31(exporter.scrape())
    crash = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert crash.returncode != 0, "the out-of-bounds write went unnoticed:\n" + crash.stderr[-2000:]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _xid31(exporter.scrape()) <= before:
        time.sleep(0.5)
    body = exporter.scrape()
    assert _xid31(body) > before, "no XID 31 within 30 s; the kernel failed with:\n" + crash.stderr[-2000:]
    seen = find(body, "xid_last_seen", xid=31)
    assert seen and all(s.value > time.time() - 600 for s in seen)
