"""The HTTP side shared by both programs: /metrics from the latest snapshot (gzip when asked),
/-/healthy, optional TLS and basic auth from an exporter-toolkit web config.

A scrape is one dictionary lookup and one write of a body rendered before the scrape arrived.
Connections are held by connections.py (one I/O thread, a bounded worker pool, deadlines and a
connection cap); this module answers each complete request with the stdlib's request parsing.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from .connections import MAX_BUFFERED_BODY, Connection, ConnectionLoop, Limits
from .exposition import CONTENT_TYPE, Snapshot
from .webconfig import WebConfig

log = logging.getLogger(__name__)

_LANDING = (b"<html><head><title>gpuobs exporter</title></head><body><h1>gpuobs exporter</h1>"
            b'<p><a href="/metrics">Metrics</a></p></body></html>\n')
_BACKLOG = 128  # the stdlib's 5 drops connections when many scrapers connect at once
_COALESCE = 65536  # bytes up to which a write waits to leave with the next
_CHUNK = 262144  # bytes per send: at the 10 s send timeout a client must take 25 KiB/s


def parse_listen_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or `:port` for all interfaces (as Go exporters read it)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{text}' is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"'{text}' is not host:port") from None
    return host, int(port)


def accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
    return False


class _Writer:
    """The handler's wfile. Small writes wait for flush(), so headers and a small body leave in one
    segment. Each send may wait up to the socket's (send) timeout for the client to take more, so
    a client that stops reading ends its connection instead of holding a worker."""

    __slots__ = ("_sock", "_pending")

    def __init__(self, sock):
        self._sock = sock
        self._pending: list[bytes] = []

    def write(self, data) -> int:
        if len(data) <= _COALESCE:
            self._pending.append(data)
        else:
            self.flush()
            self._send(data)  # the snapshot's own bytes, not a copy
        return len(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._send(data)

    def _send(self, data) -> None:
        # In chunks: a TLS write's timeout covers the whole write, a plain send's only the wait
        # for room; this way both mean "no progress for that long".
        view = memoryview(data)
        while view:
            view = view[self._sock.send(view[:_CHUNK]):]


class _Handler(BaseHTTPRequestHandler):
    """Answers one request, already read whole, from `rfile`; writes to the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    server_version = "gpuobs-exporter"

    server: MetricsServer

    def __init__(self, conn: Connection, rfile: io.BytesIO, server: MetricsServer):
        self.rfile = rfile
        self.wfile = _Writer(conn.sock)
        super().__init__(conn.sock, conn.address, server)

    def setup(self):
        self.connection = self.request

    def handle(self):
        self.close_connection = True
        self.handle_one_request()

    def finish(self):
        self.wfile.flush()  # what an error answer (400, 431, 501) left pending

    def do_HEAD(self):  # noqa: N802 - the stdlib's naming
        """What GET would answer, headers only (uptime checks ask this way)."""
        self.do_GET()

    def do_GET(self):  # noqa: N802 - the stdlib's naming
        self._skip_body()
        server = self.server
        if server.web.auth is not None and not server.web.auth.check(self.headers.get("Authorization")):
            self._send(401, b"Unauthorized\n", "text/plain", {"WWW-Authenticate": 'Basic realm="gpuobs"'})
            return
        path = self.path.partition("?")[0]
        if path == "/metrics":
            if server.gate is not None and not server.gate():
                self.close_connection = True  # the exporter hangs: no answer at all
                return
            snapshot = server.snapshot()
            if accepts_gzip(self.headers.get("Accept-Encoding")):
                self._send(200, snapshot.gzip_body(), CONTENT_TYPE, {"Content-Encoding": "gzip"})
            else:
                self._send(200, snapshot.body, CONTENT_TYPE)
        elif path == "/-/healthy":
            self._send(200, b"OK\n", "text/plain")
        elif path == "/":
            self._send(200, _LANDING, "text/html")
        else:
            self._send(404, b"Not found\n", "text/plain")

    def _skip_body(self) -> None:
        """A GET carries no body; one sent anyway must not be read as the next request on this
        connection. A small one (which the connection loop waited for) is dropped; otherwise the
        connection ends after the answer."""
        lengths = self.headers.get_all("Content-Length") or []
        length = lengths[0] if lengths else None
        if self.headers.get("Transfer-Encoding") or len(lengths) > 1 or (length is not None and not length.isdigit()):
            self.close_connection = True
        elif length and int(length) <= MAX_BUFFERED_BODY:
            if len(self.rfile.read(int(length))) < int(length):
                self.close_connection = True
        elif length and int(length):
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)


class MetricsServer:
    """Serves `snapshot()`; `gate()`, when set, runs before each /metrics answer and returning
    False drops the request unanswered (the simulator's exporter-hang fault). Binds at once (an
    OSError for a port in use); serves from start() on."""

    def __init__(self, address: tuple[str, int], snapshot: Callable[[], Snapshot], web: WebConfig | None = None,
                 gate: Callable[[], bool] | None = None, limits: Limits | None = None):
        self.snapshot = snapshot
        self.web = web or WebConfig(None, None)
        self.gate = gate
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(_BACKLOG)
        except OSError:
            listener.close()
            raise
        self.server_address = listener.getsockname()
        self._loop = ConnectionLoop(listener, self._answer, limits or Limits(), self.web.ssl_context,
                                    f"metrics-{self.port}")

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.web.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def _answer(self, conn: Connection, data: bytes) -> tuple[bool, bytes]:
        rfile = io.BytesIO(data)
        handler = _Handler(conn, rfile, self)
        return not handler.close_connection, rfile.read()

    def start(self) -> MetricsServer:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()
