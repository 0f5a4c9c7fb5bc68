"""Real Prometheus and Alertmanager servers for tests and demos, on 127.0.0.1.

Two backends behind one interface: the binaries on PATH as child processes (Debian's
`prometheus` and `prometheus-alertmanager` packages), or the upstream images as containers
through testcontainers when a Docker engine answers. Containers share the host's network, so a
generated config that names 127.0.0.1 addresses means the same in both. Readiness is polled on
/-/ready with a deadline, never slept for; the server and its storage are removed on exit, also
when the caller fails.
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
from collections.abc import Sequence
from pathlib import Path

from gpuobs.errors import GpuobsError, UsageError

BACKENDS = ("process", "container")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_engine_available(timeout: float = 2) -> bool:
    """Whether a Docker engine answers a ping (the docker CLI alone is not enough)."""
    try:
        import docker  # comes with testcontainers

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission, no answer: all mean "no engine here"
        return False


class Server:
    """A Prometheus-family server on a free (or given) 127.0.0.1 port. Use as a context manager;
    subclasses name the binary, the image and the flags.

    backend "process" runs the binary with temporary storage; "container" runs `image` with the
    host's network and `mounts` (default: the config's folder) read-only at the same paths, so
    relative and absolute rule file paths resolve alike.
    """

    binaries: tuple[str, ...] = ()
    package = ""
    image = ""  # pinned like compose/docker-compose.yml
    ready_path = "/-/ready"
    request_timeout = 10.0  # seconds for one API call

    def __init__(self, config: Path, startup_timeout: float = 30, port: int | None = None,
                 backend: str = "process", mounts: Sequence[Path] = ()):
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS)}")
        self.backend = backend
        self.binary = next((b for b in self.binaries if shutil.which(b)), None)
        if backend == "process" and self.binary is None:
            raise UsageError(f"{' or '.join(self.binaries)} is not on PATH (Debian: apt-get install {self.package})")
        self.config = Path(config).resolve()
        self.mounts = [Path(m).resolve() for m in mounts] or [self.config.parent]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._storage = None
        self._process = None
        self._container = None
        self._log = None

    def arguments(self, storage: str) -> list[str]:
        raise NotImplementedError

    def __enter__(self):
        try:
            if self.backend == "container":
                self._start_container()
            else:
                self._start_process()
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_process(self) -> None:
        self._storage = tempfile.mkdtemp(prefix=f"gpuobs-{self.binary}-")
        self._log = open(Path(self._storage) / "server.log", "w+")
        self._process = subprocess.Popen([self.binary, *self.arguments(self._storage)],
                                         stdout=self._log, stderr=subprocess.STDOUT)

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(self.image).with_command(self.arguments("/tmp/gpuobs"))
        container = container.with_kwargs(network_mode="host")
        for mount in self.mounts:
            container = container.with_volume_mapping(str(mount), str(mount), "ro")
        self._container = container.start()

    def __exit__(self, *exc) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None
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
        if self._container is not None:
            out, err = self._container.get_logs()
            return (out + err).decode(errors="replace")
        self._log.flush()
        return (Path(self._storage) / "server.log").read_text()

    def _exited(self) -> str | None:
        """Why the server is gone, or None while it runs."""
        if self._container is not None:
            self._container.get_wrapped_container().reload()
            state = self._container.get_wrapped_container().attrs["State"]
            return None if state["Running"] else f"container exited with {state['ExitCode']}"
        code = self._process.poll()
        return None if code is None else f"{self.binary} exited with {code}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            gone = self._exited()
            if gone:
                raise GpuobsError(f"{gone}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise GpuobsError(f"{self.binary or self.image} not ready after {self.startup_timeout}s:\n{self.log()}")

    def request(self, path: str, body=None, method: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
            text = response.read()
        return json.loads(text) if text else None


class PrometheusServer(Server):
    """`with PrometheusServer(config) as prom: prom.query("up")`; with `remote_write_receiver`, other
    servers can remote_write into it at `{url}/api/v1/write`."""

    binaries = ("prometheus",)
    package = "prometheus"
    image = "prom/prometheus:v2.53.2"

    def __init__(self, config: Path, *args, remote_write_receiver: bool = False, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.remote_write_receiver = remote_write_receiver

    def arguments(self, storage: str) -> list[str]:
        receiver = ["--web.enable-remote-write-receiver"] if self.remote_write_receiver else []
        return [f"--config.file={self.config}", f"--storage.tsdb.path={storage}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", *receiver]

    def api(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = self.request(f"/api/v1/{path}{query}")
        if body.get("status") != "success":
            raise GpuobsError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]


class AlertmanagerServer(Server):
    """A single, unclustered Alertmanager (Debian names its binary prometheus-alertmanager)."""

    binaries = ("prometheus-alertmanager", "alertmanager")
    package = "prometheus-alertmanager"
    image = "prom/alertmanager:v0.27.0"

    def arguments(self, storage: str) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.path={storage}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]

    def post_alerts(self, alerts: list[dict]) -> None:
        self.request("/api/v2/alerts", alerts, method="POST")

    def alerts(self) -> list[dict]:
        return self.request("/api/v2/alerts")


class SimulatorProcess(Server):
    """gpuobs-simulator serving a spec's hosts on their exporter ports; `port` is its control API.
    Always a child process: it is this repository's code, not an image to pull."""

    binaries = ("gpuobs-simulator",)
    package = "gpuobs (pip install -e .)"
    ready_path = "/faults"

    def __init__(self, config: Path, startup_timeout: float = 30, port: int | None = None, time_scale: float = 1.0,
                 pods: bool = False):
        super().__init__(config, startup_timeout, port)
        self.time_scale = time_scale
        self.pods = pods  # Kubernetes pods on the GPUs, some idle, for the efficiency rules

    def arguments(self, storage: str) -> list[str]:
        return ["--spec", str(self.config), "--control-address", f"127.0.0.1:{self.port}",
                "--time-scale", repr(self.time_scale), *(["--pods"] if self.pods else [])]

    def start_fault(self, name: str, host: str, gpu: int | None, params: dict | None = None) -> dict:
        body = {"host": host, "gpu": gpu, "params": params or {}}
        return self.request(f"/faults/{name}", body, method="POST")
