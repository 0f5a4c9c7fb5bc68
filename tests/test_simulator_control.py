"""The simulator while it runs: the control API, scenario files, the exporter-hang fault over
HTTP, and one port per host or one port for all."""

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from exposition_helpers import find, get, names, value

from exporters.simulator.control import ControlServer
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import HostLayout
from exporters.simulator.runtime import SimClock, Simulation
from exporters.simulator.scenario import ScenarioError, load, parse


@pytest.fixture
def simulate():
    running = []

    def start(hosts=("node-a", "node-b"), time_scale=1.0, single_port=None):
        layouts = [HostLayout(name, "A100-SXM4-80GB", 2, 0) for name in hosts]
        simulation = Simulation(Fleet(layouts, seed=5, epoch=1.7e9), SimClock(time_scale), 0.05,
                                single_port=single_port).start()
        control = ControlServer(("127.0.0.1", 0), simulation)
        threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        running.append((simulation, control))
        return simulation, control.url

    yield start
    for simulation, control in running:
        control.shutdown()
        control.server_close()
        simulation.stop()


def call(method: str, url: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def metrics(simulation: Simulation, host: int = 0, timeout: float = 10) -> bytes:
    with get(f"{simulation.endpoints[host].server.url}/metrics", timeout=timeout) as response:
        return response.read()


def test_control_api_starts_lists_and_stops_faults(simulate):
    simulation, url = simulate()
    status, fault = call("POST", f"{url}/faults/ecc-storm", {"host": "node-a", "gpu": 1, "sbe_per_s": 5})
    assert status == 201 and fault["params"] == {"sbe_per_s": 5, "dbe_per_s": 0.0} and fault["gpu"] == 1
    status, listing = call("GET", f"{url}/faults")
    assert [f["id"] for f in listing["active"]] == [fault["id"]]
    assert set(listing["available"]) >= {"thermal-runaway", "xid-79", "exporter-hang"}
    assert listing["available"]["power-excursion"]["params"] == {"factor": 1.2}
    assert call("POST", f"{url}/faults/ecc-storm", {"host": "node-a", "gpu": 1})[0] == 400
    status, timed = call("POST", f"{url}/faults/power-excursion", {"host": "node-b", "duration": "2m",
                                                                   "params": {"factor": 1.5}})
    assert status == 201 and timed["until_s"] - timed["started_s"] == 120 and timed["params"]["factor"] == 1.5
    status, stopped = call("DELETE", f"{url}/faults/ecc-storm?host=node-a&gpu=1")
    assert status == 200 and [f["id"] for f in stopped["stopped"]] == [fault["id"]]
    assert call("DELETE", f"{url}/faults/ecc-storm?host=node-a")[0] == 404
    assert call("DELETE", f"{url}/faults/{timed['id']}")[0] == 200
    assert call("GET", f"{url}/faults")[1]["active"] == []
    status, hosts = call("GET", f"{url}/hosts")
    assert [h["name"] for h in hosts] == ["node-a", "node-b"] and hosts[0]["metrics"].endswith("/metrics")


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/faults/meteor", {}, 404),
    ("POST", "/faults/ecc-storm", {"host": "node-a", "gpu": 7}, 400),
    ("POST", "/faults/ecc-storm", {"gpu": 0}, 400),  # two hosts: host is required
    ("POST", "/faults/ecc-storm", {"host": "node-a", "duration": "soon"}, 400),
    ("POST", "/faults", {}, 404),
    # Out of range or of the wrong type: refused before it reaches a GPU's physics.
    ("POST", "/faults/power-excursion", {"host": "node-a", "gpu": 0, "factor": 1e308}, 400),
    ("POST", "/faults/ecc-storm", {"host": "node-a", "gpu": 0, "sbe_per_s": -1}, 400),
    ("POST", "/faults/ecc-storm", {"host": "node-a", "gpu": "zero"}, 400),
    ("POST", "/faults/ecc-storm", {"host": ["node-a"], "gpu": 0}, 400),
    ("POST", "/faults/ecc-storm", {"host": "node-a", "gpu": 0, "params": [1]}, 400),
    ("DELETE", "/faults/meteor", None, 404),
    ("GET", "/nothing", None, 404),
])
def test_control_api_errors(simulate, method, path, body, status):
    _, url = simulate()
    code, answer = call(method, f"{url}{path}", body)
    assert code == status and answer["error"]


def test_a_body_that_is_not_json_is_a_400(simulate):
    _, url = simulate()
    request = urllib.request.Request(f"{url}/faults/ecc-storm", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400


@pytest.mark.parametrize(("body", "length"), [
    (b'{"host": "node-a", "gpu": 0, "per_s": Infinity}', None),  # not JSON, though Python's parser takes it
    (b'{"host": "node-a", "gpu": 0, "per_s": NaN}', None),
    (b"", "-1"),
    (b"", "70000"),  # over the limit: refused before a byte of it is read
])
def test_bodies_that_are_not_plain_json_or_too_big_are_a_400(simulate, body, length):
    simulation, url = simulate()
    parsed = urllib.parse.urlsplit(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as conn:
        conn.sendall(b"POST /faults/pcie-replay-errors HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     + f"Content-Length: {length or len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].endswith(b"400 Bad Request"), answer[:200]
    assert simulation.fleet.active_faults() == []


def test_a_fault_started_over_http_shows_in_the_scrapes(simulate):
    simulation, url = simulate(time_scale=30)
    call("POST", f"{url}/faults/power-excursion", {"host": "node-b", "gpu": 0})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = metrics(simulation, 1)
        if value(body, "power_usage", gpu=0) > 1.125 * value(body, "enforced_power_limit", gpu=0):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the power excursion never showed")
    assert value(metrics(simulation, 0), "power_usage", gpu=0) < 400, "node-a is untouched"


def test_exporter_hang_stops_answering_that_host_only(simulate):
    simulation, url = simulate()
    call("POST", f"{url}/faults/exporter-hang", {"host": "node-a", "seconds": 30})
    with pytest.raises((socket.timeout, urllib.error.URLError)):
        metrics(simulation, 0, timeout=0.5)
    assert find(metrics(simulation, 1), "gpu_up"), "node-b still answers"
    call("DELETE", f"{url}/faults/exporter-hang")
    assert find(metrics(simulation, 0), "gpu_up")


def test_a_hang_past_its_seconds_drops_the_scrape_unanswered(simulate):
    simulation, url = simulate()
    call("POST", f"{url}/faults/exporter-hang", {"host": "node-a", "seconds": 0.2})
    started = time.monotonic()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        metrics(simulation, 0, timeout=10)
    assert 0.2 <= time.monotonic() - started < 5


def test_one_port_for_all_hosts_tells_them_apart_by_hostname(simulate):
    simulation, _ = simulate(hosts=("h1", "h2", "h3"), single_port=0)
    assert len(simulation.endpoints) == 1
    body = metrics(simulation)
    assert {s.labels["hostname"] for s in find(body, "gpu_up")} == {"h1", "h2", "h3"}
    assert len(find(body, "exporter_build_info")) == 1
    assert value(body, "exporter_build_info", source="simulator") == 1
    assert "gpuobs_exporter_last_success_timestamp_seconds" in names(body)


SCENARIO = """
events:
  - at: 1m
    start: thermal-runaway
    host: node-a
    gpu: 1
    params: {rate_c_per_min: 20}
    duration: 5m
  - at: 90
    start: ecc-storm
    host: node-b
  - at: 2m30s
    stop: ecc-storm
    host: node-b
"""


def test_a_scenario_file_starts_and_stops_faults_on_time(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    fleet = Fleet([HostLayout("node-a", "A100-SXM4-80GB", 2, 0), HostLayout("node-b", "A100-SXM4-80GB", 2, 0)])
    fleet.schedule(load(path))

    def active(t):
        fleet.advance_to(t)
        return sorted((f.name, f.host, f.gpu) for f in fleet.active_faults())

    assert active(59) == []
    assert active(61) == [("thermal-runaway", "node-a", 1)]
    assert fleet.active_faults()[0].params == {"rate_c_per_min": 20, "max_rise_c": 60.0, "settle_c": 0.0, "from_c": 0.0}
    assert active(91) == [("ecc-storm", "node-b", None), ("thermal-runaway", "node-a", 1)]
    assert active(151) == [("thermal-runaway", "node-a", 1)]
    assert active(361) == [], "the duration ended it"


@pytest.mark.parametrize(("events", "message"), [
    ([{"at": "1m", "start": "meteor"}], "unknown fault"),
    ([{"at": "1m"}], "exactly one of start: or stop:"),
    ([{"start": "ecc-storm"}], "`at` is required"),
    ([{"at": "soon", "start": "ecc-storm"}], "not a duration"),
    ([{"at": 1, "start": "ecc-storm", "gpu": "two"}], "GPU index"),
    ([{"at": 1, "start": "ecc-storm", "params": {"nope": 1}}], "unknown parameters"),
    ([{"at": 1, "stop": "ecc-storm", "duration": "1m"}], "belong to start events"),
    ([{"at": 1, "start": "ecc-storm", "when": 2}], "unknown keys"),
])
def test_scenario_errors_name_the_event(events, message):
    with pytest.raises(ScenarioError, match=message) as caught:
        parse({"events": events}, "s.yaml")
    assert str(caught.value).startswith("s.yaml: events[0]: ")


def test_a_scenario_is_a_mapping_with_events():
    with pytest.raises(ScenarioError, match="an `events` list"):
        parse([], "s.yaml")


def test_collection_stall_freezes_that_hosts_readings_while_it_still_answers(simulate):
    simulation, url = simulate()
    status, _ = call("POST", f"{url}/faults/collection-stall", {"host": "node-a"})
    assert status == 201
    time.sleep(0.2)  # let a tick that started before the fault finish
    frozen = metrics(simulation, 0)
    time.sleep(0.5)  # ten ticks of 0.05 s
    assert metrics(simulation, 0) == frozen, "a stalled host serves its last snapshot"
    other = metrics(simulation, 1)
    time.sleep(0.2)
    assert metrics(simulation, 1) != other, "the other host keeps collecting"
    call("DELETE", f"{url}/faults/collection-stall")
    time.sleep(0.2)
    assert metrics(simulation, 0) != frozen
