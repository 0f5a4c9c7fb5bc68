"""Errors a user can act on. cli.py turns them into messages and exit codes."""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass

SHOWN = 200  # characters of a value that one message quotes at most
# 'user:password@' in a URL (or host:port), which no message may repeat.
_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]*@|^[^/@\s:]*:[^/@\s]*@")


def _quoting() -> reprlib.Repr:
    quoting = reprlib.Repr()
    quoting.maxstring = quoting.maxother = SHOWN
    quoting.maxlevel, quoting.maxlist, quoting.maxdict = 2, 4, 4
    return quoting


_QUOTING = _quoting()


def shown(value) -> str:
    """A value as a message quotes it: escaped (a line break shows as \\n), credentials masked, at
    most SHOWN characters with '...' for the rest, however big the value a hostile spec holds."""
    if isinstance(value, str):
        value = _CREDENTIALS.sub("***@", value)
    return clipped(_QUOTING.repr(value))


def clipped(text: str, limit: int = SHOWN) -> str:
    """Text a message repeats (an exception's own message), cut to `limit` characters."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


class GpuobsError(Exception):
    exit_code = 1


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. hosts[2].gpus.model; empty for the whole file
    message: str
    line: int | None = None


class SpecError(GpuobsError):
    """One or more problems in one spec file; nothing is generated from it."""

    exit_code = 2

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = []
        for p in self.problems:
            where = f"{self.source}: {_one_line(p.path)}: " if p.path else f"{self.source}: "
            suffix = f" (line {p.line})" if p.line else ""
            lines.append(f"{where}{p.message}{suffix}")
        return "\n".join(lines)


def _one_line(path: str) -> str:
    """A path as one short line, whatever keys a spec used in it (cross-checks name keys as given);
    room for a quoted key of SHOWN characters and the path around it."""
    return clipped(path if path.isprintable() else path.encode("unicode_escape").decode("ascii"), 2 * SHOWN)


class ToolError(GpuobsError):
    """An external tool (promtool, amtool) rejected generated output."""

    def __init__(self, command: list[str], output: str):
        self.command = command
        self.output = output
        super().__init__(f"{' '.join(command)} failed:\n{output.rstrip()}")


class OutputError(GpuobsError):
    """The filesystem refused generated output (read-only, full, forbidden): one line naming the path."""

    def __init__(self, target: object, exc: OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        super().__init__(f"{target}: cannot write the generated output: {where}{exc.strerror or exc}")


class UsageError(GpuobsError):
    exit_code = 2
