"""Client connections of the metrics server, held by one I/O thread and served by a bounded pool.

A thread per connection lets any client hold a thread and memory for as long as it likes: idle
keep-alive connections past the file limit stopped every scrape, a client sending its headers a
byte at a time lived for minutes. Here one thread waits on every connection at once (selectors)
and buffers each request until it is complete (headers, and a small body); only then does a
worker, one of at most `Limits.workers`, answer it. So a worker never waits on a slow sender,
and a connection costs a socket and a small buffer, not a thread.

Deadlines: a request's headers (and a new connection's TLS handshake) must arrive within
`header_timeout` of its first byte (of the accept, for a new connection); a kept-alive connection
may wait `idle_timeout` for its next request; a worker's write that makes no progress for
`send_timeout` ends the connection, so a client that never reads a large body holds no worker
and no memory past that. At `max_connections` (kept below the open-file limit) a new connection
closes the one that has waited longest without a request in progress, so a flood of idle
connections cannot lock scrapers out; when every connection is being answered, the new one is
closed at once.
"""

from __future__ import annotations

import errno
import logging
import math
import queue
import re
import resource
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FD_RESERVE = 64  # files the process keeps for itself (NVML, logs, the listening socket) under the limit
_MAX_HEADER_BYTES = 65536 + 8192  # the stdlib's request line limit, plus room for the headers
MAX_BUFFERED_BODY = 65536  # a GET's body read and dropped; past that the connection ends after the answer
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d{1,9})[ \t]*\r?$")
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# The least time between two deadline sweeps: a deadline is met within this much. Between sweeps
# the loop sleeps until the earliest deadline it knows of, not on a timer: a process serving many
# ports (the simulator) would otherwise wake every loop a few times a second for nothing, and its
# threads would spend the CPU contending for the interpreter lock.
_SWEEP_EVERY = 0.25

# Where a connection is: what the loop waits for on it (a worker holds it while BUSY).
HANDSHAKE, HEADER, IDLE, BUSY = "handshake", "header", "idle", "busy"


@dataclass(frozen=True)
class Limits:
    max_connections: int = 1000
    workers: int = 16
    header_timeout: float = 5.0
    idle_timeout: float = 120.0
    send_timeout: float = 10.0


def connection_room() -> int | None:
    """How many connections the open-file soft limit leaves room for; None where it sets none."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - FD_RESERVE)


def connection_cap(wanted: int) -> int:
    """`wanted`, or fewer where the open-file limit would run out first."""
    room = connection_room()
    return wanted if room is None else min(wanted, room)


class Connection:
    __slots__ = ("sock", "address", "buffer", "phase", "deadline")

    def __init__(self, sock: socket.socket, address, phase: str, deadline: float):
        self.sock = sock
        self.address = address
        self.buffer = bytearray()
        self.phase = phase
        self.deadline = deadline


class Workers:
    """At most `size` daemon threads, started as work waits for one: a worker stuck in a write
    (bounded by the send timeout) or in a hang gate never holds up the program's exit."""

    def __init__(self, size: int, name: str):
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._queued = 0

    def submit(self, job: Callable, *args) -> None:
        with self._lock:
            self._queued += 1
            start = self._queued > self._idle and self._threads < self._size
            if start:
                self._threads += 1
                number = self._threads
        self._jobs.put((job, args))
        if start:
            threading.Thread(target=self._run, name=f"{self._name}-{number}", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if item is None:
                return
            job, args = item
            job(*args)

    def stop(self) -> None:
        with self._lock:
            threads = self._threads
            self._queued += threads
        for _ in range(threads):
            self._jobs.put(None)


class ConnectionLoop:
    """Accepts on `listener` and hands each complete request to `handle(conn, data)` on a worker.
    `handle` answers the request at the start of `data` on `conn.sock` (blocking, with the send
    timeout) and returns whether to keep the connection and the bytes of `data` it did not use
    (a pipelined next request)."""

    def __init__(self, listener: socket.socket, handle: Callable[[Connection, bytes], tuple[bool, bytes]],
                 limits: Limits, ssl_context: ssl.SSLContext | None, name: str):
        self._listener = listener
        self._handle = handle
        self._limits = limits
        self._ssl = ssl_context
        self._name = name
        self.cap = connection_cap(limits.max_connections)
        self._workers = Workers(limits.workers, f"{name}-worker")
        self._selector = selectors.DefaultSelector()
        self._waiting: OrderedDict[Connection, None] = OrderedDict()  # longest without activity first
        self._busy: set[Connection] = set()
        self._returned: deque[tuple[Connection, bool, bytes]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._accept_paused_until = 0.0
        self._next_due = math.inf  # no later than the earliest deadline, or the accept pause's end
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        self._listener.setblocking(False)
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._workers.stop()

    def connections(self) -> int:
        return len(self._waiting) + len(self._busy)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is pending already, or the loop has ended

    def _due(self, when: float) -> None:
        """Something must happen at `when` (a deadline, the end of an accept pause)."""
        self._next_due = min(self._next_due, when)

    def _run(self) -> None:
        try:
            while not self._stopping:
                wait = None if self._next_due == math.inf else max(0.0, self._next_due - time.monotonic())
                for key, events in self._selector.select(wait):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._take_back()
                    elif key.data not in self._waiting:
                        continue  # closed earlier in this round (evicted for a new connection)
                    elif events & selectors.EVENT_WRITE or key.data.phase == HANDSHAKE:
                        self._handshake(key.data)
                    else:
                        self._read(key.data)
                now = time.monotonic()
                if now >= self._next_due:
                    self._sweep(now)
        except Exception:  # the loop must never die silently: every scrape would hang
            log.exception("%s: connection loop failed", self._name)
        finally:
            for conn in [*self._waiting, *self._busy]:
                self._close(conn)
            self._selector.close()
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()

    # -- accepting ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.debug("accept failed: %s", exc)
                    return
                # Out of files despite the cap (another server in this process, other files):
                # free one, and stop accepting a moment rather than spin on the full backlog.
                log.warning("%s: out of file descriptors with %d connections", self._name, self.connections())
                if not self._evict_one():
                    self._selector.unregister(self._listener)
                    self._accept_paused_until = time.monotonic() + 0.1
                    self._due(self._accept_paused_until)
                return
            if self.connections() >= self.cap and not self._evict_one():
                log.debug("%s: %d connections, all being answered: closing %s", self._name, self.cap, address)
                sock.close()
                continue
            self._admit(sock, address)

    def _admit(self, sock: socket.socket, address) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Headers and body go out in two writes; with Nagle's algorithm the body of a small
            # response would wait for the client's delayed ACK (40 ms on Linux).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + self._limits.header_timeout
        if self._ssl is None:
            conn = Connection(sock, address, HEADER, deadline)
        else:
            try:
                tls = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS with %s failed: %s", address, exc)
                sock.close()
                return
            conn = Connection(tls, address, HANDSHAKE, deadline)
        self._waiting[conn] = None
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        self._due(deadline)
        if conn.phase == HANDSHAKE:
            self._handshake(conn)

    def _evict_one(self) -> bool:
        """Closes the connection that has waited longest without a request being answered."""
        if not self._waiting:
            return False
        conn = next(iter(self._waiting))
        log.debug("%s: at %d connections: closing the longest waiting, %s", self._name, self.cap, conn.address)
        self._close(conn)
        return True

    # -- reading -----------------------------------------------------------------------------
    def _handshake(self, conn: Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.address, exc)
            self._close(conn)
            return
        conn.phase = HEADER
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._read(conn)  # the client's first request may have come with the handshake's end

    def _read(self, conn: Connection) -> None:
        received = False
        while True:  # TLS: read every record already decrypted; the selector would not say so
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                log.debug("reading from %s: %s", conn.address, exc)
                self._close(conn)
                return
            if not data:
                self._close(conn)  # the client hung up
                return
            conn.buffer += data
            received = True
            if self._ssl is None or len(conn.buffer) > _MAX_HEADER_BYTES:
                break
        if received:
            if conn.phase == IDLE:
                conn.phase = HEADER
                conn.deadline = time.monotonic() + self._limits.header_timeout
                self._due(conn.deadline)
            self._waiting.move_to_end(conn)
            self._dispatch_if_complete(conn)

    def _dispatch_if_complete(self, conn: Connection) -> None:
        end = _HEADER_END.search(conn.buffer, 0, _MAX_HEADER_BYTES)
        if end is None:
            if len(conn.buffer) > _MAX_HEADER_BYTES:
                try:
                    conn.sock.send(_TOO_LARGE)  # best effort: the socket does not block
                except (OSError, ssl.SSLError):
                    pass
                self._close(conn)
            return
        length = _CONTENT_LENGTH.search(conn.buffer, 0, end.start())
        needed = end.end()
        if length is not None and int(length.group(1)) <= MAX_BUFFERED_BODY:
            needed += int(length.group(1))  # a small body is dropped by the worker: wait for all of it
        if len(conn.buffer) < needed:
            return
        self._selector.unregister(conn.sock)
        del self._waiting[conn]
        self._busy.add(conn)
        conn.phase = BUSY
        data, conn.buffer = bytes(conn.buffer), bytearray()
        self._workers.submit(self._serve, conn, data)

    # -- answering (on a worker) --------------------------------------------------------------
    def _serve(self, conn: Connection, data: bytes) -> None:
        keep, rest = False, b""
        try:
            conn.sock.settimeout(self._limits.send_timeout)
            keep, rest = self._handle(conn, data)
        except OSError as exc:  # routine: the client went away or stopped reading, or the server stops
            log.debug("answering %s: %r", conn.address, exc)
        except Exception:
            log.exception("request from %s failed", conn.address)
        self._returned.append((conn, keep and not self._stopping, rest))
        self._wake()

    def _take_back(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self._returned:
            conn, keep, rest = self._returned.popleft()
            self._busy.discard(conn)
            if not keep:
                self._close(conn)
                continue
            try:
                conn.sock.setblocking(False)
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError):
                self._close(conn)
                continue
            self._waiting[conn] = None
            conn.buffer = bytearray(rest)
            now = time.monotonic()
            conn.phase, conn.deadline = (HEADER, now + self._limits.header_timeout) if rest else \
                (IDLE, now + self._limits.idle_timeout)
            self._due(conn.deadline)
            if rest:
                self._dispatch_if_complete(conn)

    # -- ending ------------------------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._waiting if c.deadline <= now]:
            log.debug("%s: %s past its %s deadline", self._name, conn.address, conn.phase)
            self._close(conn)
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        pending = [c.deadline for c in self._waiting]
        if self._accept_paused_until:
            pending.append(self._accept_paused_until)
        self._next_due = max(min(pending), now + _SWEEP_EVERY) if pending else math.inf

    def _close(self, conn: Connection) -> None:
        if conn in self._waiting:  # registered with the selector only while waiting
            del self._waiting[conn]
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        self._busy.discard(conn)
        try:
            conn.sock.close()
        except OSError:
            pass
