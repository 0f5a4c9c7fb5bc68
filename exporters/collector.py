"""Collection in the background, decoupled from scrapes: a thread reads on its own interval and
publishes a rendered Snapshot; scrapes only ever read the latest one, so a scrape never waits on
NVML and concurrent scrapes share one body."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import VERSION
from .exposition import EMPTY, EXPORTER, Builder, Snapshot

log = logging.getLogger(__name__)


class ErrorCounts:
    """Reads that failed since start, per (gpu, field); gpu is "" for reads of no single GPU."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def count(self, gpu, field: str) -> None:
        key = ("" if gpu is None else str(gpu), field)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def items(self) -> list[tuple[tuple[str, str], int]]:
        with self._lock:
            return sorted(self._counts.items())


def add_self_health(builder: Builder, source: str, duration: float, last_success: float | None,
                    errors: ErrorCounts) -> None:
    builder.add("exporter_collection_duration", EXPORTER, round(duration, 6))
    if last_success is not None:
        builder.add("exporter_last_success", EXPORTER, round(last_success, 3))
    for (gpu, field), count in errors.items():
        builder.add("exporter_collection_errors", EXPORTER, count, (("gpu", gpu), ("field", field)))
    builder.add("exporter_build_info", EXPORTER, 1, (("version", VERSION), ("source", source)))


class Collector:
    """Calls `collect(builder, errors)` every `interval` seconds; it returns True when it read at
    least one GPU. The snapshot it publishes carries the exporter's self-health series."""

    def __init__(self, collect: Callable[[Builder, ErrorCounts], bool], interval: float, source: str,
                 clock: Callable[[], float] = time.time, errors: ErrorCounts | None = None):
        self._collect = collect
        self.interval = interval
        self.source = source
        self.errors = errors or ErrorCounts()
        self._clock = clock
        self._last_success: float | None = None
        self._ticker: Ticker | None = None
        self.snapshot: Snapshot = EMPTY

    def collect_once(self) -> Snapshot:
        started = time.monotonic()
        builder = Builder()
        try:
            ok = self._collect(builder, self.errors)
        except Exception:  # a bug in one cycle must not end collection; the error metric shows it
            log.exception("collection cycle failed")
            self.errors.count(None, "collection")
            builder, ok = Builder(), False
        now = self._clock()
        if ok:
            self._last_success = now
        add_self_health(builder, self.source, time.monotonic() - started, self._last_success, self.errors)
        snapshot = Snapshot(builder.render(), previous=self.snapshot)
        self.snapshot = snapshot
        return snapshot

    def start(self) -> None:
        self.collect_once()  # serve real data from the first scrape on
        self._ticker = Ticker(self.interval, self.collect_once, f"{self.source}-collector").start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()


class Ticker:
    """Calls `tick()` every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, interval: float, tick: Callable[[], object], name: str):
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic()
        while True:
            # Fixed rate; after a tick that overran, the next one starts at once, without a
            # burst of catch-up ticks.
            deadline = max(deadline + self.interval, time.monotonic())
            if self._stop.wait(max(0.0, deadline - time.monotonic())):
                return
            try:
                self._tick()
            except Exception:  # one failed tick must not end the loop
                log.exception("%s: tick failed", self._thread.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 10)
