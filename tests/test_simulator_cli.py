"""gpuobs-simulator as a program: many hosts on many ports, specs, the control API, errors."""

import json
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time

import pytest
from connection_helpers import assert_small_limits_hold
from exposition_helpers import find, get, value

from conftest import ROOT

_SERVING = re.compile(r"serving (\S+) \((\d+) GPUs\) on (\S+)")


class Simulator:
    """The program in a child process; the lines it announces tell where it listens."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "exporters.simulator", *args], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()
        self.hosts: dict[str, str] = {}
        self.control = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if match := _SERVING.search(line):
                self.hosts[match.group(1)] = match.group(3)
            elif "control API on" in line:
                self.control = line.split("control API on ")[1].strip()
            elif line.strip() == "gpuobs-simulator: ready":
                break

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def scrape(url: str) -> bytes:
    with get(url) as response:
        return response.read()


def test_many_hosts_on_many_ports_each_with_its_own_hostname(tmp_path):
    targets = tmp_path / "targets.json"
    with Simulator("--hosts", "3", "--gpus", "2", "--base-port", "0", "--control-address", "127.0.0.1:0",
                   "--write-targets", str(targets), "--time-scale", "10") as sim:
        assert list(sim.hosts) == ["gpu-node-01", "gpu-node-02", "gpu-node-03"]
        ports = {url.rsplit(":", 1)[1] for url in sim.hosts.values()}
        assert len(ports) == 3
        for name, url in sim.hosts.items():
            body = scrape(url)
            assert {s.labels["hostname"] for s in find(body, "gpu_up")} == {name}
            assert len(find(body, "gpu_up")) == 2
        with get(sim.control) as response:
            assert json.load(response)["active"] == []
        groups = json.loads(targets.read_text())
        assert [g["labels"] for g in groups] == [{"cluster": "sim", "host": n} for n in sim.hosts]
        assert [g["targets"][0].rsplit(":", 1)[1] for g in groups] == [u.rsplit(":", 1)[1].split("/")[0]
                                                                       for u in sim.hosts.values()]
        assert sim.stop() == 0


def test_a_spec_gives_the_hosts_models_and_mig_layouts(tmp_path):
    spec = tmp_path / "mig.yaml"
    spec.write_text("""
clusters: [{name: c1}]
hosts:
  - {name: plain, cluster: c1, address: 10.0.0.1, gpus: {model: H100-SXM5-80GB, count: 2}}
  - name: sliced
    cluster: c1
    address: 10.0.0.2
    gpus: {model: A100-SXM4-80GB, count: 2, mig: {profiles: [3g.40gb, 4g.40gb], gpus: [1]}}
""")
    with Simulator("--spec", str(spec), "--base-port", "0", "--control-address", "") as sim:
        assert list(sim.hosts) == ["plain", "sliced"]
        assert all(int(url.rsplit(":", 1)[1].split("/")[0]) >= 1024 for url in sim.hosts.values())
        plain, sliced = (scrape(url) for url in sim.hosts.values())
        assert {s.labels["modelName"] for s in find(plain, "gpu_up")} == {"NVIDIA H100 80GB HBM3"}
        assert find(plain, "gpu_temp_margin") and not find(plain, "gpu_max_op_temp")
        assert {s.labels["GPU_I_PROFILE"] for s in find(sliced, "fb_used", gpu=1)} == {"3g.40gb", "4g.40gb"}
        assert "GPU_I_PROFILE" not in find(sliced, "fb_used", gpu=0)[0].labels
        assert sim.stop() == 0


def test_the_demo_spec_serves_its_one_host_of_eight_a100():
    with Simulator("--spec", str(ROOT / "specs" / "demo.yaml"), "--base-port", "0", "--control-address", "") as sim:
        (url,) = sim.hosts.values()
        body = scrape(url)
        assert len(find(body, "gpu_up", hostname="gpu-node-01", modelName="NVIDIA A100-SXM4-80GB")) == 8
        assert value(body, "gpu_max_op_temp", gpu=0) == 85
        sim.stop()


def test_hosts_that_would_share_a_port_are_an_error_that_says_what_to_do(tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text("""
clusters: [{name: c1}]
hosts:
  - {name: one, cluster: c1, address: 10.0.0.1, gpus: {model: L4, count: 1}}
  - {name: two, cluster: c1, address: 10.0.0.2, gpus: {model: L4, count: 1}}
""")
    result = subprocess.run([sys.executable, "-m", "exporters.simulator", "--spec", str(spec)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "hosts one and two would both listen on port 9400; pass --base-port" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "A9000"], "unknown GPU model 'A9000'"),
    (["--mig", "9g.1tb"], "has no MIG profiles ['9g.1tb']"),
    (["--scenario", "/nonexistent.yaml"], "No such file"),
    (["--spec", "/nonexistent.yaml"], "no such spec file"),
    # NaN would busy-loop the ticker, infinity stop it for good.
    (["--interval", "nan"], "--interval must be a number of seconds above 0 and at most 3600, not 'nan'"),
    (["--step", "inf"], "--step must be a number of seconds above 0 and at most 3600, not 'inf'"),
    (["--time-scale", "0"], "--time-scale must be a number above 0 and at most 1e+06, not '0'"),
    (["--web.workers", "many"], "--web.workers must be a whole number, not 'many'"),
    (["--web.idle-timeout", "nan"],
     "--web.idle-timeout must be a number of seconds above 0 and at most 86400, not 'nan'"),
])
def test_bad_settings_exit_1_with_a_message(args, message):
    result = subprocess.run([sys.executable, "-m", "exporters.simulator", "--base-port", "0", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr


def test_more_connections_than_the_open_file_limit_has_room_for_is_an_error():
    def lower_the_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    result = subprocess.run([sys.executable, "-m", "exporters.simulator", "--base-port", "0", "--web.max-connections",
                             "1000"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            preexec_fn=lower_the_file_limit)
    assert result.returncode == 1
    assert "--web.max-connections must be at most 192 under this process's open-file limit" in result.stderr


def test_server_limits_from_flags_take_effect():
    with Simulator("--hosts", "1", "--gpus", "1", "--base-port", "0", "--control-address", "",
                   "--web.max-connections", "4", "--web.header-timeout", "2") as sim:
        (url,) = sim.hosts.values()
        assert_small_limits_hold(int(url.rsplit(":", 1)[1].split("/")[0]))
        assert sim.stop() == 0


def test_spec_ports_map_to_local_ports(tmp_path):
    from exporters.simulator.layout import from_spec

    spec = tmp_path / "ports.yaml"
    spec.write_text("""
clusters: [{name: c1}]
hosts:
  - {name: one, cluster: c1, address: 10.0.0.1, exporter_port: 9400, gpus: {model: L4, count: 1}}
  - {name: two, cluster: c1, address: 10.0.0.2, exporter_port: 9401, gpus: {model: L4, count: 1}}
""")
    assert [h.port for h in from_spec(spec)] == [9400, 9401]
    assert [h.port for h in from_spec(spec, port_offset=1000)] == [10400, 10401]
    assert [h.port for h in from_spec(spec, base_port=20000)] == [20000, 20001]
    assert [h.port for h in from_spec(spec, base_port=0)] == [0, 0], "free ports, announced at start"
    assert dict(from_spec(spec)[1].target_labels) == {"cluster": "c1", "host": "two"}
