"""Errors a user can act on. cli.py turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


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
            where = f"{self.source}: {p.path}: " if p.path else f"{self.source}: "
            suffix = f" (line {p.line})" if p.line else ""
            lines.append(f"{where}{p.message}{suffix}")
        return "\n".join(lines)


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
