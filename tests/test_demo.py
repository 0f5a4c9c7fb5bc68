"""`gpuobs demo`: the demo fleet without Docker, stopped cleanly by Ctrl-C or SIGTERM."""

import contextlib
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

DEMO = ROOT / "specs" / "demo.yaml"


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


def left_running(process: subprocess.Popen) -> str:
    """The processes of the demo's session still running (its servers, if it did not stop them)."""
    table = subprocess.run(["ps", "-o", "pid,stat,etime,args", "-s", str(process.pid)],
                           capture_output=True, text=True).stdout
    return "".join(table.splitlines(keepends=True)[1:])


@contextlib.contextmanager
def running_demo(tmp_path, before: tuple[str, ...] = ()):
    """`gpuobs demo` on specs/demo.yaml with a fault on GPU 3, until it says "ready": (the process, its
    output lines so far, read as they come). `before` runs ahead of it in a shell that then execs it.
    Whatever is still running at the end is killed, with the demo's whole session."""
    try:
        check_ports(ports_needed(load_model(DEMO)))
    except UsageError as exc:
        pytest.skip(str(exc))
    command = [sys.executable, "-m", "gpuobs", "demo", "--spec", str(DEMO), "-o", str(tmp_path),
               "--fault", "thermal-runaway", "--fault-gpu", "3"]
    if before:
        command = ["sh", "-c", f"{'; '.join(before)}; exec \"$@\"", "sh", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.startswith("ready") for line in lines):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert any(line.startswith("ready") for line in lines), "".join(lines)
        yield process, lines
        reader.join(timeout=5)
    finally:
        if left_running(process):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop(process: subprocess.Popen, signum: int, lines: list[str]) -> None:
    """Send `signum` and expect the demo to stop everything and exit 0: it gives each of its three
    servers 10 s to stop before it kills it."""
    os.kill(process.pid, signum)
    try:
        process.wait(timeout=45)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 45 s after {signal.Signals(signum).name}:\n{left_running(process)}\n"
                    f"output:\n{''.join(lines)}")
    assert (process.returncode, left_running(process)) == (0, ""), "".join(lines)
    assert "stopping\n" in lines
    check_ports(ports_needed(load_model(DEMO)))  # every port it served is free again


@needs("prometheus")
@needs("prometheus-alertmanager")
def test_demo_runs_the_fleet_and_stops_on_ctrl_c(tmp_path):
    with running_demo(tmp_path) as (process, lines):
        assert "started fault thermal-runaway on gpu-node-01 GPU 3\n" in lines
        active = get("http://127.0.0.1:9399/faults")["active"]
        assert [(f["name"], f["gpu"]) for f in active] == [("thermal-runaway", 3)]
        query = 'http://127.0.0.1:9090/api/v1/query?query=up{job="gpu-exporter"}'
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not get(query)["data"]["result"]:
            time.sleep(1)
        assert get(query)["data"]["result"][0]["value"][1] == "1", "Prometheus scrapes the simulator"
        stop(process, signal.SIGINT, lines)


@needs("prometheus")
@needs("prometheus-alertmanager")
@pytest.mark.parametrize(("before", "signum"), [((), signal.SIGTERM), (("trap '' INT",), signal.SIGINT)],
                         ids=["SIGTERM", "SIGINT inherited ignored"])
def test_demo_stops_its_servers_on_sigterm_and_on_a_sigint_its_shell_ignored(tmp_path, before, signum):
    """A service manager's SIGTERM, and Ctrl-C (or `kill -INT`) to a demo that a script started in
    the background, where the shell hands it SIGINT ignored."""
    with running_demo(tmp_path, before) as (process, lines):
        stop(process, signum, lines)
