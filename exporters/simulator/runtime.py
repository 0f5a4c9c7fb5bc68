"""The running simulator: a ticking thread advances the fleet and renders every host's snapshot;
one MetricsServer per host (or one for all) serves them with the exporter's own server code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..collector import ErrorCounts, Ticker, add_self_health
from ..connections import Limits
from ..exposition import EMPTY, Builder, Snapshot
from ..server import MetricsServer
from ..webconfig import WebConfig
from .fleet import Fleet, SimHost

SOURCE = "simulator"


class SimClock:
    """Simulated seconds since start: wall time multiplied by the time scale."""

    def __init__(self, time_scale: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        if time_scale <= 0:
            raise ValueError("the time scale must be positive")
        self.time_scale = time_scale
        self._monotonic = monotonic
        self._start = monotonic()

    def __call__(self) -> float:
        return (self._monotonic() - self._start) * self.time_scale


class Endpoint:
    """One /metrics: the hosts it serves and the snapshot it serves them from."""

    def __init__(self, hosts: list[SimHost], port: int):
        if len({id(h.vocabulary) for h in hosts}) > 1:
            raise ValueError("hosts imitating different exporters cannot share one port; leave out --single-port")
        self.hosts = hosts
        self.vocabulary = hosts[0].vocabulary
        self.port = port
        self.snapshot: Snapshot = EMPTY
        self.errors = ErrorCounts()  # simulated reads never fail; kept so the series set matches
        self.server: MetricsServer | None = None

    def render(self, wall: float) -> None:
        started = time.monotonic()
        builder = Builder(self.vocabulary)
        for host in self.hosts:
            host.emit(builder)
        add_self_health(builder, SOURCE, time.monotonic() - started, wall, self.errors)
        self.snapshot = Snapshot(builder.render(), previous=self.snapshot)

    def gate(self) -> bool:
        """The exporter-hang fault: hold the scrape while a host hangs, drop it if it still does."""
        hung = [h for h in self.hosts if h.hung]
        if not hung:
            return True
        deadline = time.monotonic() + max(h.hang_seconds for h in hung)
        while any(h.hung for h in self.hosts) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not any(h.hung for h in self.hosts)


class Simulation:
    def __init__(self, fleet: Fleet, clock: Callable[[], float], interval: float = 1.0,
                 listen_host: str = "127.0.0.1", single_port: int | None = None, web: WebConfig | None = None,
                 limits: Limits | None = None):
        self.fleet = fleet
        self.clock = clock
        self.interval = interval
        self.listen_host = listen_host
        self.web = web
        self.limits = limits
        if single_port is not None:
            self.endpoints = [Endpoint(fleet.hosts, single_port)]
        else:
            self.endpoints = [Endpoint([h], h.layout.port) for h in fleet.hosts]
        self._ticker: Ticker | None = None

    def tick(self) -> None:
        self.fleet.advance_to(self.clock())
        wall = time.time()
        with self.fleet.lock:  # a consistent view: no fault starts halfway through a render
            for endpoint in self.endpoints:
                if not any(host.stalled for host in endpoint.hosts):
                    endpoint.render(wall)

    def start(self) -> Simulation:
        self.tick()
        try:
            for endpoint in self.endpoints:
                endpoint.server = MetricsServer((self.listen_host, endpoint.port), lambda e=endpoint: e.snapshot,
                                                self.web, endpoint.gate, self.limits).start()
                endpoint.port = endpoint.server.port
        except OSError:
            self.stop()
            raise
        self._ticker = Ticker(self.interval, self.tick, "simulator").start()
        return self

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        with self.fleet.lock:
            for host in self.fleet.hosts:
                host.hung = False  # release scrapes held by a hang
        # Each server's loop notices a shutdown at its next poll: stop them side by side.
        stopping = [threading.Thread(target=e.server.stop) for e in self.endpoints if e.server is not None]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
