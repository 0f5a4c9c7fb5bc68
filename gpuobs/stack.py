"""Real Prometheus and Alertmanager servers for tests and demos: the binaries on PATH, as child
processes on 127.0.0.1.

Readiness is polled on /-/ready with a deadline, never slept for; the process and its
temporary storage are removed on exit, also when the caller fails.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gpuobs.errors import GpuobsError, UsageError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A Prometheus-family server as a child process on a free 127.0.0.1 port, with temporary
    storage. Use as a context manager; subclasses name the binary and its flags."""

    binaries: tuple[str, ...] = ()
    package = ""
    ready_path = "/-/ready"
    request_timeout = 10.0  # seconds for one API call

    def __init__(self, config: Path, startup_timeout: float = 30, port: int | None = None):
        self.binary = next((b for b in self.binaries if shutil.which(b)), None)
        if self.binary is None:
            raise UsageError(f"{' or '.join(self.binaries)} is not on PATH (Debian: apt-get install {self.package})")
        self.config = Path(config)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._storage = None
        self._process = None
        self._log = None

    def arguments(self, storage: str) -> list[str]:
        raise NotImplementedError

    def __enter__(self):
        self._storage = tempfile.mkdtemp(prefix=f"gpuobs-{self.binary}-")
        self._log = open(Path(self._storage) / "server.log", "w+")
        self._process = subprocess.Popen([self.binary, *self.arguments(self._storage)],
                                         stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
        if self._storage is not None:
            shutil.rmtree(self._storage, ignore_errors=True)

    def log(self) -> str:
        self._log.flush()
        return (Path(self._storage) / "server.log").read_text()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise GpuobsError(f"{self.binary} exited with {self._process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise GpuobsError(f"{self.binary} not ready after {self.startup_timeout}s:\n{self.log()}")

    def request(self, path: str, body=None, method: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
            text = response.read()
        return json.loads(text) if text else None


class PrometheusProcess(ServerProcess):
    """`with PrometheusProcess(config) as prom: prom.query("up")`."""

    binaries = ("prometheus",)
    package = "prometheus"

    def arguments(self, storage: str) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.tsdb.path={storage}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"]

    def api(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = self.request(f"/api/v1/{path}{query}")
        if body.get("status") != "success":
            raise GpuobsError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]


class AlertmanagerProcess(ServerProcess):
    """A single, unclustered Alertmanager (Debian names its binary prometheus-alertmanager)."""

    binaries = ("prometheus-alertmanager", "alertmanager")
    package = "prometheus-alertmanager"

    def arguments(self, storage: str) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.path={storage}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]

    def post_alerts(self, alerts: list[dict]) -> None:
        self.request("/api/v2/alerts", alerts, method="POST")

    def alerts(self) -> list[dict]:
        return self.request("/api/v2/alerts")


class SimulatorProcess(ServerProcess):
    """gpuobs-simulator serving a spec's hosts on their exporter ports; `port` is its control API."""

    binaries = ("gpuobs-simulator",)
    package = "gpuobs (pip install -e .)"
    ready_path = "/faults"

    def arguments(self, storage: str) -> list[str]:
        return ["--spec", str(self.config), "--control-address", f"127.0.0.1:{self.port}"]

    def start_fault(self, name: str, host: str, gpu: int) -> dict:
        return self.request(f"/faults/{name}", {"host": host, "gpu": gpu}, method="POST")
