"""How a place in a spec is written in messages (hosts[2].gpus.model), and which line it is on."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuobs.errors import Problem, shown

KEY_SHOWN = 100  # characters of a key that a path repeats as it is


def format_path(loc) -> str:
    """hosts[2].gpus.model; a key that is not plain text is quoted, so a path cannot carry a line
    break or a megabyte of a hostile key into a message."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        plain = isinstance(part, str) and 0 < len(part) <= KEY_SHOWN and part.isprintable()
        text = part if plain else shown(part)
        out += f".{text}" if out else text
    return out


def parent(path: str) -> str:
    return path[:max(path.rfind("."), path.rfind("["), 0)]


@dataclass(frozen=True)
class SourceMap:
    """Where each path of a spec is written: its 1-based line and, for a plain YAML scalar, its text
    as written (01, yes), which YAML may have read as something else (the number 1, true)."""

    lines: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, str] = field(default_factory=dict)  # path -> its value as written
    keys: dict[str, str] = field(default_factory=dict)  # path -> its key as written

    def line_of(self, path: str) -> int | None:
        """The line of `path`, else of the nearest enclosing path (a missing key has no line)."""
        while path not in self.lines and path:
            path = parent(path)
        return self.lines.get(path)

    def placed(self, problems: list[Problem]) -> list[Problem]:
        return [p if p.line else Problem(p.path, p.message, self.line_of(p.path)) for p in problems]
