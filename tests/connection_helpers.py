"""Watching the metrics server's connections from the client side, for the server's own tests and
for both programs' limit flags."""

from __future__ import annotations

import socket
import time


def closed_within(conn: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `conn` (anything it sent is dropped), None if it did not."""
    started = time.monotonic()
    conn.settimeout(0.05)
    while time.monotonic() - started < seconds:
        try:
            if not conn.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def assert_small_limits_hold(port: int) -> None:
    """The server on 127.0.0.1:`port` was told to hold 4 connections and wait 2 s for headers: a
    fifth silent connection closes the one waiting longest at once, the others close at 2 s, not
    at the default 5."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    opened = time.monotonic()
    try:
        assert closed_within(conns[0], 1) is not None, "the fifth connection closed the one waiting longest"
        for conn in conns[1:]:
            assert closed_within(conn, 5) is not None
            assert 1.5 < time.monotonic() - opened < 4.5, "closed at the header deadline"
    finally:
        for conn in conns:
            conn.close()
