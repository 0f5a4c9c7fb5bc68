"""Load a spec file (YAML, or Python exposing `fleet`) into a validated Fleet.

Every problem is reported with the file, the exact path (hosts[2].gpus.model) and, for
YAML, the line; all problems of a file are reported together.
"""

from __future__ import annotations

import runpy
import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from gpuobs.errors import Problem, SpecError
from gpuobs.gpus import GPU_MODELS
from gpuobs.spec import schema
from gpuobs.spec.checks import cross_check
from gpuobs.spec.schema import Fleet

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):
    """Safe loading that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def load_spec(path: str | Path) -> Fleet:
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SpecError(source, [Problem("", "no such spec file")])
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        text = path.read_text(encoding="utf-8")
        data = _parse_yaml(source, text)
        fleet = _validate(source, data, text)
    elif suffix == ".py":
        fleet = _validate(source, _run_python(source, path), None)
    else:
        raise SpecError(source, [Problem("", "a spec is a .yaml, .yml or .py file")])
    problems = cross_check(fleet, fleet.name or path.stem)
    if problems:
        raise SpecError(source, _with_lines(problems, text if suffix != ".py" else None))
    return fleet


def _parse_yaml(source: str, text: str):
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(source, [Problem("", f"not valid YAML: {problem}",
                                         mark.line + 1 if mark else None)]) from None
    if not isinstance(data, dict):
        raise SpecError(source, [Problem("", "the spec must be a YAML mapping with clusters and hosts")])
    return data


def _run_python(source: str, path: Path):
    try:
        namespace = runpy.run_path(str(path))
    except ValidationError as exc:
        # Raised by whichever class was being built; its paths start at that class.
        raise SpecError(source, _problems(exc, root=exc.title)) from None
    except (Exception, SystemExit) as exc:  # the user's code: report any failure, never a traceback
        raise SpecError(source, [Problem("", f"running the spec failed: {type(exc).__name__}: {exc}")]) from None
    fleet = namespace.get("fleet")
    if not isinstance(fleet, Fleet):
        got = "nothing" if fleet is None else type(fleet).__name__
        raise SpecError(source, [Problem("", f"a Python spec must define `fleet = Fleet(...)`; found {got}")])
    # Validate again from plain data: it catches objects changed after construction.
    return fleet.model_dump(by_alias=True, exclude_unset=True)


def _validate(source: str, data, text: str | None) -> Fleet:
    own = [m.get("name") for m in data.get("gpu_models") or [] if isinstance(m, dict)] \
        if isinstance(data.get("gpu_models"), list) else []
    try:
        return Fleet.model_validate(data, context={"gpu_models": [*GPU_MODELS, *own]})
    except ValidationError as exc:
        raise SpecError(source, _with_lines(_problems(exc), text)) from None


def format_path(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(exc: ValidationError, root: str = "Fleet") -> list[Problem]:
    root_class = getattr(schema, root, Fleet)
    problems = []
    for err in exc.errors():
        loc = tuple(part for part in err["loc"] if part != "[key]")  # a bad dict key: point at the key
        kind = err["type"]
        if kind == "extra_forbidden" and loc[-1] in schema.INLINE_SECRETS:
            message = (f"'{loc[-1]}' would put a secret into the spec; write it to a file and give "
                       f"{schema.INLINE_SECRETS[loc[-1]]} instead")
        elif kind == "extra_forbidden":
            allowed = _allowed_keys(root_class, loc[:-1])
            message = f"unknown key '{loc[-1]}'; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            message = "required key missing"
        elif kind == "value_error":
            message = err["msg"].removeprefix("Value error, ")
        else:
            message = f"{err['msg']} (got {err['input']!r})"
        path = format_path(loc)
        if root_class is not Fleet:
            path = f"{root}(...)" + (f".{path}" if path and not path.startswith("[") else path)
        problems.append(Problem(path, message))
    return problems


def _allowed_keys(root_class, loc) -> list[str]:
    """The keys the class at `loc` accepts, for 'unknown key' messages."""
    annotation = root_class
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation):
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [a for a in args if a is not type(None)]
        return _unwrap(candidates[0]) if len(candidates) == 1 else annotation
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(args[0])
    return annotation


def _step(annotation, part):
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    return None


def _with_lines(problems: list[Problem], text: str | None) -> list[Problem]:
    if text is None:
        return problems
    lines = _yaml_lines(text)

    def line_of(path: str) -> int | None:
        # A missing key has no line of its own: use the nearest enclosing one.
        while path:
            if path in lines:
                return lines[path]
            path = path[:max(path.rfind("."), path.rfind("["), 0)]
        return None

    return [Problem(p.path, p.message, line_of(p.path)) for p in problems]


def _yaml_lines(text: str) -> dict[str, int]:
    """Map each path in a YAML document to its 1-based line; only built when errors are shown."""
    lines: dict[str, int] = {}

    def walk(node, loc):
        lines[format_path(loc)] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[format_path(loc + (key.value,))] = key.start_mark.line + 1
                walk_child(value, loc + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, loc + (i,))

    def walk_child(node, loc):
        keep = lines[format_path(loc)]
        walk(node, loc)
        lines[format_path(loc)] = keep

    walk(yaml.compose(text, Loader=_Loader), ())
    return lines
