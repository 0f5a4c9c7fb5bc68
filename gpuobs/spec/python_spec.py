"""Running a Python spec. It is a program: loading it runs arbitrary code, so load only specs you
trust. Its problems name each object's place in the fleet (hosts[3].gpus.count, not
Gpus(...).count) and the spec's line that built it."""

from __future__ import annotations

import runpy
from pathlib import Path

from pydantic import BaseModel, ValidationError

from gpuobs.errors import Problem, SpecError, clipped
from gpuobs.spec import schema
from gpuobs.spec.messages import schema_problems
from gpuobs.spec.paths import SourceMap, format_path
from gpuobs.spec.recording import recording
from gpuobs.spec.schema import Fleet


def run_python_spec(source: str, path: Path) -> tuple[Fleet, SourceMap]:
    """The spec's `fleet`, and the line each of its parts was built on."""
    namespace, failure = {}, None
    with recording(str(path)) as record:
        try:
            namespace = runpy.run_path(str(path))
        except (Exception, SystemExit) as exc:  # the user's code: report any failure, never a traceback
            failure = exc
    fleet = namespace.get("fleet")
    places = _places(fleet) if isinstance(fleet, Fleet) else {}
    if record.failed:  # before any failure they led to
        raise SpecError(source, [p for built, line, errors in record.failed
                                 for p in _failed_problems(built, line, errors, places)])
    if failure is not None:
        raise SpecError(source, _failure_problems(failure, record.filename))
    if not isinstance(fleet, Fleet):
        got = "nothing" if fleet is None else type(fleet).__name__
        raise SpecError(source, [Problem("", f"a Python spec must define `fleet = Fleet(...)`; found {got}")])
    return fleet, SourceMap({places[id(built)]: line for built, line in record.built
                             if id(built) in places and line})


def _places(fleet: Fleet) -> dict[int, str]:
    """id of each object reachable from the fleet -> its path there (the first, if shared)."""
    places: dict[int, str] = {}

    def walk(value, loc):
        if not isinstance(value, (BaseModel, list, dict)) or id(value) in places:
            return
        places[id(value)] = format_path(loc)
        if isinstance(value, BaseModel):
            fields = type(value).model_fields
            for name, item in value.__dict__.items():
                walk(item, loc + ((fields[name].alias or name) if name in fields else name,))
        else:
            for key, item in (enumerate(value) if isinstance(value, list) else value.items()):
                walk(item, loc + (key,))

    walk(fleet, ())
    return places


def _failed_problems(built, line, errors, places) -> list[Problem]:
    """Problems of an object built from bad values, at its place in the fleet (else named by class)."""
    prefix = places.get(id(built), f"{type(built).__name__}(...)")
    return [Problem(p.path, p.message, line) for p in schema_problems(errors, type(built), prefix)]


def _failure_problems(exc: BaseException, filename: str) -> list[Problem]:
    line = _traceback_line(exc, filename)
    if isinstance(exc, ValidationError):  # a spec class validated from something that is not a mapping
        root = getattr(schema, exc.title, Fleet)
        return [Problem(p.path, p.message, line) for p in schema_problems(exc.errors(), root, f"{exc.title}(...)")]
    said = clipped(" ".join(str(exc).split()))  # one line, however long the exception's message
    return [Problem("", f"running the spec failed: {type(exc).__name__}: {said}", line)]


def _traceback_line(exc: BaseException, filename: str) -> int | None:
    """The spec's line the failure happened on: its last frame in the spec file."""
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
