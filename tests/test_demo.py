"""`gpuobs demo`: the demo fleet without Docker, stopped cleanly by Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import yaml

from conftest import MINIMAL_SPEC, ROOT, needs
from gpuobs.demo import check_ports, ports_needed, run_demo
from gpuobs.errors import UsageError
from gpuobs.generate import load_model


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_busy_ports_are_named():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"ports in use on 127.0.0.1: {port} \\(Prometheus\\)"):
            check_ports({port: "Prometheus"})


def test_demo_needs_somewhere_to_send_alerts(tmp_path):
    spec = tmp_path / "plain.yaml"
    spec.write_text(yaml.safe_dump(MINIMAL_SPEC))
    with pytest.raises(UsageError, match="needs an alertmanager section"):
        run_demo(spec, tmp_path / "out", print, duration=0)


@needs("prometheus")
@needs("prometheus-alertmanager")
def test_demo_runs_the_fleet_and_stops_on_ctrl_c(tmp_path):
    model = load_model(ROOT / "specs" / "demo.yaml")
    try:
        check_ports(ports_needed(model))
    except UsageError as exc:
        pytest.skip(str(exc))
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuobs", "demo", "--spec", str(ROOT / "specs" / "demo.yaml"), "-o", str(tmp_path),
         "--fault", "thermal-runaway", "--fault-gpu", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.startswith("ready") for line in lines):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert any(line.startswith("ready") for line in lines), "".join(lines)
        assert "started fault thermal-runaway on gpu-node-01 GPU 3\n" in lines
        active = get("http://127.0.0.1:9399/faults")["active"]
        assert [(f["name"], f["gpu"]) for f in active] == [("thermal-runaway", 3)]
        query = 'http://127.0.0.1:9090/api/v1/query?query=up{job="gpu-exporter"}'
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not get(query)["data"]["result"]:
            time.sleep(1)
        assert get(query)["data"]["result"][0]["value"][1] == "1", "Prometheus scrapes the simulator"
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, "".join(lines)
    assert "stopping\n" in lines
    check_ports(ports_needed(model))  # everything it started is gone
