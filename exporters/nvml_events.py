"""XID events through NVML's event API, on a thread of its own.

nvmlEventSetWait_v2 blocks up to its timeout, so it never runs on the collection or scrape path.
On Linux every XID is its own event, so the counter per code sees repeats a last-value gauge hides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pynvml

from .collector import ErrorCounts
from .xid import XidLog

log = logging.getLogger(__name__)
_FIELD = "xid_events"


class XidWatcher:
    def __init__(self, handles: dict[int, object], log_: XidLog, errors: ErrorCounts, timeout_ms: int = 1000,
                 clock: Callable[[], float] = time.time):
        self._handles = handles
        self._log = log_
        self._errors = errors
        self._timeout_ms = timeout_ms
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered: set[int] = set()

    def start(self) -> None:
        try:
            event_set = pynvml.nvmlEventSetCreate()
        except Exception as exc:  # no XID events is no reason to stop the exporter
            log.warning("cannot watch XID events: %s", exc)
            self._errors.count(None, _FIELD)
            return
        for index, handle in self._handles.items():
            try:
                pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, event_set)
                self.registered.add(index)
            except Exception as exc:
                # NotSupported leaves the set usable; the GPU's XIDs are then not seen.
                log.warning("GPU %s: cannot watch XID events: %s", index, exc)
                self._errors.count(index, _FIELD)
        self._thread = threading.Thread(target=self._run, args=(event_set,), name="xid-events", daemon=True)
        self._thread.start()

    def _run(self, event_set) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data = pynvml.nvmlEventSetWait_v2(event_set, self._timeout_ms)
                except pynvml.NVMLError_Timeout:
                    continue
                except Exception as exc:
                    # GpuIsLost and the like: the collector serves the GPU as down; keep waiting
                    # for the other GPUs' events, without spinning.
                    log.debug("waiting for XID events: %r", exc)
                    self._errors.count(None, _FIELD)
                    self._stop.wait(1)
                    continue
                try:
                    self._record(data)
                except Exception as exc:  # an event that made no sense costs that event only
                    log.warning("unusable XID event: %r", exc)
                    self._errors.count(None, _FIELD)
        finally:
            try:
                pynvml.nvmlEventSetFree(event_set)
            except Exception:  # NVML may already be shut down
                pass

    def _record(self, data) -> None:
        if not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
            return
        index = pynvml.nvmlDeviceGetIndex(data.device)
        self._log.record(index, int(data.eventData), self._clock())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_ms / 1000 + 5)
