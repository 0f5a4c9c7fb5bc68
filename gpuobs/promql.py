"""Tiny helpers for writing PromQL text: selectors and number formatting."""

from __future__ import annotations


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
