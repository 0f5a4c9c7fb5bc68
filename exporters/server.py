"""The HTTP side shared by both programs: /metrics from the latest snapshot (gzip when asked),
/-/healthy, optional TLS and basic auth from an exporter-toolkit web config.

The stdlib server is enough: a scrape is one dictionary lookup and one sendall of a body that
was rendered before the scrape arrived.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporters.exposition import CONTENT_TYPE, Snapshot
from exporters.webconfig import WebConfig

log = logging.getLogger(__name__)

_LANDING = (b"<html><head><title>gpuobs exporter</title></head><body><h1>gpuobs exporter</h1>"
            b'<p><a href="/metrics">Metrics</a></p></body></html>\n')
_HANDSHAKE_TIMEOUT = 10.0
_MAX_IGNORED_BODY = 65536  # bytes of a GET's body read and dropped; past that the connection ends


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    server_version = "gpuobs-exporter"
    timeout = 120  # an idle keep-alive connection gives its thread back after this
    # Headers and body go out in two writes; with Nagle's algorithm the body of a small response
    # would wait for the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    server: MetricsServer

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
        connection. A small one is read and dropped; otherwise the connection ends after the answer."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (length is not None and not length.isdigit()):
            self.close_connection = True
        elif length and int(length) <= _MAX_IGNORED_BODY:
            self.rfile.read(int(length))
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


class MetricsServer(ThreadingHTTPServer):
    """Serves `snapshot()`; `gate()`, when set, runs before each /metrics answer and returning
    False drops the request unanswered (the simulator's exporter-hang fault)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the stdlib's 5 drops connections when many scrapers connect at once

    def __init__(self, address: tuple[str, int], snapshot: Callable[[], Snapshot], web: WebConfig | None = None,
                 gate: Callable[[], bool] | None = None):
        self.snapshot = snapshot
        self.web = web or WebConfig(None, None)
        self.gate = gate
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.web.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def handle_error(self, request, client_address):
        """A scraper that hangs up mid-answer is routine: no traceback on stderr for it."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("%s went away: %s", client_address, error)
            return
        log.exception("request from %s failed", client_address)

    def finish_request(self, request, client_address):
        context = self.web.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        # The TLS handshake runs here, on the connection's own thread, so a slow or broken
        # client never stalls the accept loop.
        request.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            tls.settimeout(_Handler.timeout)
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"metrics-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
