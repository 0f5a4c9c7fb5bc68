"""Load a spec file (YAML, or Python exposing `fleet`) into a validated Fleet.

Every problem is reported with the file, the exact path (hosts[2].gpus.model) and the line where
known; all problems of a file are reported together.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from gpuobs.errors import Problem, SpecError
from gpuobs.gpus import GPU_MODELS
from gpuobs.spec.checks import cross_check
from gpuobs.spec.messages import schema_problems
from gpuobs.spec.paths import SourceMap
from gpuobs.spec.python_spec import run_python_spec
from gpuobs.spec.schema import Fleet
from gpuobs.spec.yaml_source import parse_yaml, read_spec_text, source_map


def load_spec(path: str | Path) -> Fleet:
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SpecError(source, [Problem("", "no such spec file")])
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        data, where = _read_yaml(source, path)
    elif suffix == ".py":
        built, lines = run_python_spec(source, path)
        # Validated again from plain data: it catches objects changed after construction.
        data, where = built.model_dump(by_alias=True, exclude_unset=True), lambda: lines
    else:
        raise SpecError(source, [Problem("", "a spec is a .yaml, .yml or .py file")])
    fleet = _validate(source, data, where)
    problems = cross_check(fleet, fleet.name or path.stem)
    if problems:
        raise SpecError(source, where().placed(problems))
    return fleet


def _read_yaml(source: str, path: Path) -> tuple[dict, Callable[[], SourceMap]]:
    data, node = parse_yaml(source, read_spec_text(source, path))
    if not isinstance(data, dict):
        raise SpecError(source, [Problem("", "the spec must be a YAML mapping with clusters and hosts")])
    return data, functools.cache(lambda: source_map(node))  # only built when there are problems to place


def _validate(source: str, data: dict, where: Callable[[], SourceMap]) -> Fleet:
    own = [m.get("name") for m in data.get("gpu_models") or [] if isinstance(m, dict)] \
        if isinstance(data.get("gpu_models"), list) else []
    try:
        return Fleet.model_validate(data, context={"gpu_models": [*GPU_MODELS, *own]})
    except ValidationError as exc:
        found = where()
        raise SpecError(source, found.placed(schema_problems(exc.errors(), Fleet, source=found))) from None
