"""Flags both programs share, checked the same way at start, with a message naming the flag: a NaN
interval would busy-loop and an infinite one stop the collector thread for good. The metrics
server's limits (connections.py) are the same flags in both programs."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass

from .connections import FD_RESERVE, Limits, connection_room


def positive(text: str | float, flag: str, maximum: float = 86400.0, unit: str = "seconds") -> float:
    """A finite number above 0 and at most `maximum`; ValueError names the flag."""
    what = f"a number of {unit}" if unit else "a number"
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be {what}, not {str(text)!r}") from None
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise ValueError(f"{flag} must be {what} above 0 and at most {maximum:g}, not {str(text)!r}")
    return value


def count(text: str | int, flag: str, maximum: int) -> int:
    """A whole number from 1 to `maximum`; ValueError names the flag."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be a whole number, not {str(text)!r}") from None
    if not 1 <= value <= maximum:
        raise ValueError(f"{flag} must be a whole number from 1 to {maximum}, not {str(text)!r}")
    return value


@dataclass(frozen=True)
class _Limit:
    field: str  # of connections.Limits: an int is a count, a float seconds
    flag: str
    variable: str  # the exporter's environment variable
    maximum: int
    help: str  # {default} is the field's default


_DEFAULTS = Limits()
_LIMITS = (
    _Limit("workers", "--web.workers", "GPUOBS_WEB_WORKERS", 1024,
           "threads answering complete requests; more wait for one (default {default})"),
    _Limit("max_connections", "--web.max-connections", "GPUOBS_WEB_MAX_CONNECTIONS", 1_000_000,
           "connections held at once; a new one past it closes the one waiting longest without a request "
           "(default {default}, or fewer where the open-file limit leaves no room for them)"),
    _Limit("header_timeout", "--web.header-timeout", "GPUOBS_WEB_HEADER_TIMEOUT", 600,
           "seconds a request's line and headers, or a new connection's TLS handshake, may take (default {default})"),
    _Limit("idle_timeout", "--web.idle-timeout", "GPUOBS_WEB_IDLE_TIMEOUT", 86400,
           "seconds a kept-alive connection may wait for its next request (default {default})"),
    _Limit("send_timeout", "--web.send-timeout", "GPUOBS_WEB_SEND_TIMEOUT", 600,
           "seconds a write may make no progress before the connection ends (default {default})"),
)


def add_server_limits(parser, environment: bool) -> None:
    """The metrics server's limits as flags of `parser` (or an argument group); with `environment`
    each defaults to its variable."""
    for limit in _LIMITS:
        text = limit.help.format(default=f"{getattr(_DEFAULTS, limit.field):g}")
        parser.add_argument(limit.flag, dest=f"web_{limit.field}", metavar="N" if _whole(limit) else "SECONDS",
                            default=os.environ.get(limit.variable) if environment else None,
                            help=f"{text} [{limit.variable}]" if environment else text)


def server_limits(args: argparse.Namespace, environment: bool) -> Limits:
    """The Limits the flags ask for, the defaults for those not given; ValueError names the flag
    (and, with `environment`, its variable) of a value out of range."""
    values: dict[str, float] = {}
    for limit in _LIMITS:
        text = getattr(args, f"web_{limit.field}")
        if text is None:
            continue
        name = f"{limit.flag} ({limit.variable})" if environment else limit.flag
        value = count(text, name, limit.maximum) if _whole(limit) else positive(text, name, limit.maximum)
        if limit.field == "max_connections":
            _within_file_limit(value, name, text)
        values[limit.field] = value
    return Limits(**values)


def _whole(limit: _Limit) -> bool:
    return isinstance(getattr(_DEFAULTS, limit.field), int)


def _within_file_limit(connections: int, name: str, text: str) -> None:
    """Asked for explicitly, more connections than the open-file limit has room for is refused: the
    server would otherwise hold fewer than it was told (the default is lowered without a word)."""
    room = connection_room()
    if room is not None and connections > room:
        raise ValueError(f"{name} must be at most {room} under this process's open-file limit (ulimit -n; "
                         f"{FD_RESERVE} files stay for the process itself), not {str(text)!r}: raise the limit "
                         "or ask for fewer")
