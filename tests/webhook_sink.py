"""A webhook receiver for Alertmanager in tests: collects notifications per URL path."""

import http.server
import json
import threading
import time


class Sink:
    """Collects webhook notifications per receiver path."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Condition()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink.lock:
                    sink.received.append((self.path.strip("/"), body))
                    sink.lock.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self, receiver: str, host: str) -> list[dict]:
        with self.lock:
            return [body for path, body in self.received
                    if path == receiver and body["groupLabels"].get("host") == host]

    def wait_for(self, receiver: str, host: str, alertnames: set, timeout: float = 20) -> list[dict]:
        """Notifications to `receiver` for `host` until they cover `alertnames` (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.notifications(receiver, host)
            if alertnames <= {a["labels"]["alertname"] for n in found for a in n["alerts"]}:
                return found
            with self.lock:
                self.lock.wait(0.2)
        raise AssertionError(f"{receiver} got no {alertnames} for {host} in {timeout}s: {self.received}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def all(self) -> list[tuple[str, dict]]:
        """(path, body) of every notification so far."""
        with self.lock:
            return list(self.received)

