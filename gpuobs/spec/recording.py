"""What a running Python spec builds: every spec class its code constructs, with the spec's line
that built it. One built from bad values does not stop the program: it stands in unvalidated and
its problems are reported once the fleet exists, at its place there (spec/python_spec.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError


@dataclass
class Recording:
    filename: str
    built: list = field(default_factory=list)  # (object, line) for each class the spec's code built
    failed: list = field(default_factory=list)  # (object, line, pydantic errors) for those built from bad values


_CURRENT: ContextVar[Recording | None] = ContextVar("gpuobs_python_spec", default=None)


@contextmanager
def recording(filename: str) -> Iterator[Recording]:
    record = Recording(filename)
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


def init_recorded(model: BaseModel, data: dict, init: Callable[..., None]) -> None:
    """A spec class's __init__: plain validation, except while a Python spec runs, when the object
    is recorded with its line, and stands in unvalidated if its values are bad."""
    record = _CURRENT.get()
    if record is None:
        init(**data)
        return
    line = _spec_line(record.filename)
    try:
        init(**data)
    except ValidationError as exc:
        _stand_in(model, data)
        record.failed.append((model, line, exc.errors()))
    record.built.append((model, line))


def _stand_in(model: BaseModel, data: dict) -> None:
    """Give `model` the values as given, unvalidated (pydantic's model_construct, in place)."""
    built = type(model).model_construct(**data)
    for attribute in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        object.__setattr__(model, attribute, getattr(built, attribute))


def _spec_line(filename: str) -> int | None:
    """The line the spec file is running now (its innermost frame)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != filename:
        frame = frame.f_back
    return frame.f_lineno if frame is not None else None
