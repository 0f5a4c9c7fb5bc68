"""`gpuobs demo`: the demo fleet on this machine without Docker.

The simulator, Alertmanager and Prometheus run as child processes with the generated
configuration, on the ports that configuration names (so what runs is exactly what was
generated), plus a webhook sink that prints the notifications. Everything stops together.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from gpuobs.errors import UsageError
from gpuobs.generate import generate, load_model
from gpuobs.model import FleetModel
from gpuobs.stack import AlertmanagerServer, PrometheusServer, SimulatorProcess

CONTROL_PORT = 9399


def port_of(address: str) -> int:
    """The port of a host:port address."""
    return int(address.rsplit(":", 1)[1])


def local_webhooks(model: FleetModel) -> list[int]:
    """Ports of the spec's webhook receivers on this machine: the demo answers them itself."""
    ports = []
    for receiver in model.alertmanager.receivers if model.alertmanager else []:
        if receiver.webhook:
            url = urllib.parse.urlsplit(receiver.webhook.url)
            if url.hostname in ("127.0.0.1", "localhost") and url.port:
                ports.append(url.port)
    return sorted(set(ports))


def ports_needed(model: FleetModel) -> dict[int, str]:
    p = model.prometheus
    needed = {h.exporter_port: f"simulated exporter of {h.name}" for h in model.hosts}
    needed[port_of(p.self_address)] = "Prometheus"
    needed.update({port_of(a): "Alertmanager" for a in p.alertmanagers})
    needed[CONTROL_PORT] = "the simulator's control API"
    needed.update({port: "the webhook sink" for port in local_webhooks(model)})
    return needed


def check_ports(needed: dict[int, str]) -> None:
    busy = []
    for port, what in sorted(needed.items()):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"{port} ({what})")
    if busy:
        raise UsageError(f"ports in use on 127.0.0.1: {', '.join(busy)}; stop what holds them")


@contextlib.contextmanager
def webhook_sink(port: int, say: Callable[[str], None]):
    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            for alert in body.get("alerts", []):
                labels = alert["labels"]
                say(f"notification to {body.get('receiver')}: {alert['status']} {labels.get('alertname')} "
                    f"{labels.get('cluster')}/{labels.get('host')} GPU {labels.get('gpu', '-')}")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def stopped_by_signals():
    """SIGINT and SIGTERM both raise KeyboardInterrupt inside, so either one unwinds the demo and
    stops its servers. Left to their inherited handling, SIGTERM would end the process at once and
    leave the servers running on the demo's ports, and a shell that starts the demo in the
    background (`gpuobs demo &` in a script) hands it SIGINT ignored."""
    previous = {signum: signal.signal(signum, signal.default_int_handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_demo(spec: Path, out: Path, say: Callable[[str], None], fault: str | None = None, fault_gpu: int = 0,
             duration: float | None = None) -> None:
    """Generate, start everything, optionally start a fault, then run until Ctrl-C or SIGTERM (or
    `duration`)."""
    fleet = load_model(spec)
    if fleet.per_cluster:
        raise UsageError(f"{spec}: the demo runs one Prometheus for the fleet; this spec asks for one per cluster")
    generate([spec], out)
    folder = out / fleet.name
    if fleet.alertmanager is None:
        raise UsageError(f"{spec}: the demo needs an alertmanager section to route alerts")
    check_ports(ports_needed(fleet))
    p = fleet.prometheus
    with stopped_by_signals(), contextlib.ExitStack() as stack:
        for port in local_webhooks(fleet):
            stack.enter_context(webhook_sink(port, say))
        simulator = stack.enter_context(SimulatorProcess(spec, port=CONTROL_PORT, pods=True))
        stack.enter_context(AlertmanagerServer(folder / "alertmanager" / "alertmanager.yml",
                                                port=port_of(p.alertmanagers[0])))
        prometheus = stack.enter_context(PrometheusServer(folder / "prometheus" / "prometheus.yml",
                                                           port=port_of(p.self_address)))
        say(f"Prometheus:   {prometheus.url} (alerts: {prometheus.url}/alerts)")
        say(f"Alertmanager: http://127.0.0.1:{port_of(p.alertmanagers[0])}")
        say(f"Simulator:    {', '.join(f'http://127.0.0.1:{h.exporter_port}/metrics' for h in fleet.hosts)}")
        say(f"Faults:       {simulator.url}/faults (POST /faults/<name> with JSON {{host, gpu}})")
        if fault:
            host = fleet.hosts[0].name
            try:
                simulator.start_fault(fault, host, fault_gpu)
            except urllib.error.HTTPError as exc:
                raise UsageError(f"the simulator refused fault '{fault}': {exc.read().decode().strip()}") from None
            say(f"started fault {fault} on {host} GPU {fault_gpu}")
        say("ready; Ctrl-C stops everything")
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        say("stopping")
