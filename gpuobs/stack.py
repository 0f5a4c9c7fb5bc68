"""A real Prometheus for tests and demos: the binary on PATH, as a child process on 127.0.0.1.

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


class PrometheusProcess:
    """`with PrometheusProcess(config) as prom: prom.query("up")`."""

    def __init__(self, config: Path, startup_timeout: float = 30):
        if shutil.which("prometheus") is None:
            raise UsageError("prometheus is not on PATH (Debian: apt-get install prometheus)")
        self.config = Path(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._storage = None
        self._process = None
        self._log = None

    def __enter__(self) -> PrometheusProcess:
        self._storage = tempfile.mkdtemp(prefix="gpuobs-prometheus-")
        self._log = open(Path(self._storage) / "prometheus.log", "w+")
        self._process = subprocess.Popen(
            ["prometheus", f"--config.file={self.config}", f"--storage.tsdb.path={self._storage}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
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
        return (Path(self._storage) / "prometheus.log").read_text()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise GpuobsError(f"prometheus exited with {self._process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise GpuobsError(f"prometheus not ready after {self.startup_timeout}s:\n{self.log()}")

    def api(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise GpuobsError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]
