"""The control API: start, stop and list faults while the simulator runs.

    GET    /faults                      active faults, simulated time, and every fault's parameters
    POST   /faults/<name>               JSON {host, gpu, duration, params: {...}}; parameters may
                                        also be given at the top level; 201 with the fault
    DELETE /faults/<name>[?host=&gpu=]  stops matching faults (DELETE /faults stops all)
    DELETE /faults/<id>                 stops one fault by its id
    GET    /hosts                       hosts, their GPUs and where their metrics are served
"""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .faults import FAULTS, FaultError, catalog
from .runtime import Simulation
from .scenario import ScenarioError, seconds

_START_KEYS = {"host", "gpu", "duration", "params"}
MAX_BODY = 65536  # bytes; a fault's settings are a few dozen


def _no_constant(name: str):
    """JSON has no NaN or Infinity; Python's parser would take them, and a fault would run on them."""
    raise ValueError(f"{name} is not a number JSON allows")


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer

    def do_GET(self):  # noqa: N802 - the stdlib's naming
        path = urlsplit(self.path).path.rstrip("/")
        sim = self.server.simulation
        if path == "/faults":
            self._json(200, {"time_s": sim.fleet.t, "active": [f.as_json() for f in sim.fleet.active_faults()],
                             "available": catalog()})
        elif path == "/hosts":
            self._json(200, [{"name": h.name, "model": h.layout.model, "gpus": len(h.gpus),
                              "metrics": f"{e.server.url}/metrics" if e.server else None}
                             for e in sim.endpoints for h in e.hosts])
        else:
            self._json(404, {"error": f"no such resource {path}"})

    def do_POST(self):  # noqa: N802
        name = self._fault_name()
        if name is None:
            return
        try:
            body = self._body()
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError("params must be a JSON object")
            params = {**params, **{k: v for k, v in body.items() if k not in _START_KEYS}}
            if not isinstance(body.get("host"), str | None):
                raise ValueError(f"host must be a host name, not {body['host']!r}")
            if body.get("gpu") is not None and (isinstance(body["gpu"], bool) or not isinstance(body["gpu"], int)):
                raise ValueError(f"gpu must be a GPU index, not {body['gpu']!r}")
            duration = seconds(body["duration"]) if body.get("duration") is not None else None
            fault = self.server.simulation.fleet.start_fault(name, body.get("host"), body.get("gpu"), params,
                                                             duration)
        except (FaultError, ScenarioError, ValueError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(201, fault.as_json())

    def do_DELETE(self):  # noqa: N802
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        if not segments or segments[0] != "faults" or len(segments) > 2:
            self._json(404, {"error": f"no such resource {parts.path}"})
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            query.update(self._body())
            gpu = query.get("gpu")
            gpu = int(gpu) if gpu is not None else None
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        target = segments[1] if len(segments) == 2 else None
        fleet = self.server.simulation.fleet
        if target is not None and target.isdigit():
            stopped = fleet.stop_faults(fault_id=int(target))
        else:
            if target is not None and target not in FAULTS:
                self._json(404, {"error": f"unknown fault '{target}'"})
                return
            stopped = fleet.stop_faults(target, query.get("host"), gpu)
        if target is not None and not stopped:
            self._json(404, {"error": "no matching active fault"})
            return
        self._json(200, {"stopped": [f.as_json() for f in stopped]})

    def _fault_name(self) -> str | None:
        segments = [s for s in urlsplit(self.path).path.split("/") if s]
        if len(segments) != 2 or segments[0] != "faults":
            self._json(404, {"error": "POST /faults/<name>"})
            return None
        if segments[1] not in FAULTS:
            self._json(404, {"error": f"unknown fault '{segments[1]}'; known: {', '.join(FAULTS)}"})
            return None
        return segments[1]

    def _body(self) -> dict:
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            raise ValueError(f"Content-Length must be a byte count, not {text!r}")
        length = int(text)
        if length > MAX_BODY:
            raise ValueError(f"the body is {length} bytes; at most {MAX_BODY} are read")
        if not length:
            return {}
        try:
            body = json.loads(self.rfile.read(length), parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return body

    def _json(self, status: int, data) -> None:
        body = json.dumps(data, indent=1).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulation: Simulation):
        self.simulation = simulation
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
