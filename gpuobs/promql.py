"""Tiny helpers for writing PromQL text: selectors, number formatting and durations."""

from __future__ import annotations

import re


def num(value: float) -> str:
    """A number as PromQL and YAML both read it back exactly: 80.0 -> 80, and 1.2 * 72 stays
    86.39999999999999, because a test input "at the threshold" must be the threshold."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sel(metric: str, *matchers: str, **equal: str) -> str:
    """metric{a="b", c=~"d"}: `matchers` are ready-made (`a=~"x|y"`; empty ones are skipped),
    `equal` are exact matches."""
    parts = [m for m in matchers if m] + [f"{k}={quote(v)}" for k, v in equal.items()]
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def regex_alternatives(values) -> str:
    """An anchored-by-PromQL regex matching exactly the given literal values."""
    specials = set(".^$*+?()[]{}|\\")
    return "|".join("".join("\\\\" + c if c in specials else c for c in v) for v in values)


def seconds(duration: str) -> float:
    """A Prometheus duration in seconds."""
    units = {"y": 31536000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(v) * units[u] for v, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", duration))
