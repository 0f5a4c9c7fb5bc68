"""Pydantic's validation errors in the project's words: where, what is wrong and what to write
instead. An unknown key comes first, with the key it probably meant, and a missing key that typo
explains is not reported again; a value is quoted at most SHOWN characters, a secret never."""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from gpuobs.errors import Problem, shown
from gpuobs.spec import schema
from gpuobs.spec.paths import SourceMap, format_path

# pydantic's type errors -> what the value must be
_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
_BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}
_CHOICES = ("literal_error", "enum")


@dataclass(frozen=True)
class _Error:
    """One pydantic error, located in the spec's terms."""

    loc: tuple  # without pydantic's '[key]' and union member tags
    detail: dict  # pydantic's error: type, input, ctx
    on_key: bool  # the error is about a mapping's key, not its value
    secret: bool  # the value may hold a secret: never quote it
    union: tuple | None = None  # loc of the union whose member pydantic tried, if any


def schema_problems(errors: list[dict], root: type[BaseModel], prefix: str = "",
                    source: SourceMap | None = None) -> list[Problem]:
    """`errors` of validating `root` as problems whose paths start with `prefix`; `source` holds the
    text of plain YAML scalars, to say when YAML read a value as a number or boolean."""
    source = source or SourceMap()
    located = _merge_unions([_locate(root, error) for error in errors])
    allowed = {e.loc: _allowed(root, e) for e in located if _unknown_key(e)}
    hints = {loc: close[0] for loc, keys in allowed.items()
             if (close := difflib.get_close_matches(str(loc[-1]), keys, n=1))}
    explained = {loc[:-1] + (hint,) for loc, hint in hints.items()}
    problems = []
    for error in sorted(located, key=lambda e: not _unknown_key(e)):
        if error.detail["type"] == "missing" and error.loc in explained:
            continue  # the unknown key's hint already names it
        path = _joined(prefix, format_path(error.loc))
        written = (source.keys if error.on_key else source.scalars).get(path)
        message = (_unknown_key_message(error, hints.get(error.loc), allowed[error.loc]) if _unknown_key(error)
                   else ("the key " if error.on_key else "") + _message(error, written))
        problems.append(Problem(path, message))
    return problems


def _joined(prefix: str, path: str) -> str:
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


# --- where: pydantic's loc in the spec's terms --------------------------------------------------

def _locate(root, error: dict) -> _Error:
    annotation, loc, secret, on_key, union = root, [], False, False, None
    for part in error["loc"]:
        if part == "[key]":
            on_key = True
        elif annotation is not None and _is_union(annotation):
            annotation, union = None, tuple(loc)  # `part` names the member pydantic tried, not a place
        else:
            loc.append(part)
            annotation, field = _step(annotation, part) if annotation is not None else (None, None)
            secret = secret or (field is not None and any(isinstance(m, schema.Secret) for m in field.metadata))
    return _Error(tuple(loc), error, on_key, secret, union)


def _merge_unions(located: list[_Error]) -> list[_Error]:
    """A value no member of a union accepts: pydantic reports every member's error. Keep those of
    the member that got furthest into the value; when none got in, one error naming every member."""
    groups: dict[tuple, list[_Error]] = {}
    out = []
    for error in located:
        if error.union is None:
            out.append(error)
        else:
            groups.setdefault(error.union, []).append(error)
    for union, group in groups.items():
        deeper = [e for e in group if len(e.loc) > len(union)]
        if deeper:
            out += deeper
            continue
        expected = ", or ".join(dict.fromkeys(_expected(e.detail) for e in group))
        out.append(_Error(union, {"type": "union", "input": group[0].detail.get("input"),
                                  "ctx": {"expected": expected}}, False, group[0].secret))
    return out


def _unknown_key(error: _Error) -> bool:
    return error.detail["type"] == "extra_forbidden" or (error.on_key and error.detail["type"] in _CHOICES)


def _allowed(root, error: _Error) -> list[str]:
    if error.detail["type"] in _CHOICES:
        return _choices(error.detail)
    annotation = root
    for part in error.loc[:-1]:
        annotation, _ = _step(annotation, part)
        if annotation is None:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _choices(detail: dict) -> list[str]:
    return re.findall(r"'([^']*)'", detail.get("ctx", {}).get("expected", ""))


def _is_union(annotation) -> bool:
    annotation = _unwrap(annotation)
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _unwrap(annotation):
    """The type behind Annotated[...] and Optional[...]."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [a for a in args if a is not type(None)]
        return _unwrap(candidates[0]) if len(candidates) == 1 else annotation
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(args[0])
    return annotation


def _step(annotation, part):
    """(annotation, field) one part further into the schema; (None, None) where it cannot follow."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation, field
        return None, None
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0], None
    if origin is dict:
        return typing.get_args(annotation)[1], None
    return None, None


# --- what: the message ----------------------------------------------------------------------------

def _message(error: _Error, written: str | None) -> str:
    detail, kind = error.detail, error.detail["type"]
    if kind == "missing":
        return "required key missing"
    if kind == "value_error":
        return detail["msg"].removeprefix("Value error, ")
    got = _got(detail, written, error.secret)
    if kind in _CHOICES:
        return f"must be {detail['ctx']['expected']}; {got}" + _did_you_mean(detail)
    if kind in _EXPECTED or kind == "union":
        return f"must be {_expected(detail)}; {got}" + _quote_hint(detail, written)
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"must be {word} {_number(detail['ctx'][key])}; {got}"
    return _size_message(detail) or f"{detail['msg']}; {got}"


def _unknown_key_message(error: _Error, hint: str | None, allowed: list[str]) -> str:
    key = error.loc[-1]
    if key in schema.INLINE_SECRETS and error.detail["type"] == "extra_forbidden":
        return (f"'{key}' would put a secret into the spec; write it to a file and give "
                f"{schema.INLINE_SECRETS[key]} instead")
    if hint:
        return f"unknown key {shown(key)}; did you mean '{hint}'?"
    return f"unknown key {shown(key)}; allowed: {', '.join(allowed)}"


def _size_message(detail: dict) -> str | None:
    kind, ctx = detail["type"], detail.get("ctx", {})
    if kind == "too_short":
        count, mapping = ctx["min_length"], isinstance(detail.get("input"), dict)
        noun = ("entry" if mapping else "item") if count == 1 else ("entries" if mapping else "items")
        return f"must {'have' if mapping else 'list'} at least {'one' if count == 1 else count} {noun}"
    if kind == "too_long":
        return f"must list at most {ctx['max_length']} items; it has {ctx['actual_length']}"
    if kind == "string_too_short":
        return "must not be empty" if ctx["min_length"] == 1 else f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"does not have the required form {ctx['pattern']}"
    if kind == "recursion_loop":
        return "contains itself; a spec cannot be recursive"
    return None


def _expected(detail: dict) -> str:
    if detail["type"] in _CHOICES or detail["type"] == "union":
        return detail["ctx"]["expected"]
    return _EXPECTED.get(detail["type"], "something else")


def _got(detail: dict, written: str | None, secret: bool) -> str:
    """What the spec gave; where text was expected, as written before YAML read it as a number."""
    value = detail.get("input")
    if secret:
        return "the value is not shown, as it may hold a secret"
    if written is not None and detail["type"] == "string_type" and value is not None:
        return f"YAML reads {written} as {_kind(value)}"
    return f"got {_kind(value)}"


def _kind(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {_number(value)}"
    return {dict: "a mapping", list: "a list"}.get(type(value)) or shown(value)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else shown(value)


def _quote_hint(detail: dict, written: str | None) -> str:
    value = detail.get("input")
    if detail["type"] != "string_type" or not isinstance(value, (bool, int, float)):
        return ""
    return f"; write {shown(written if written is not None else str(value))} in quotes"


def _did_you_mean(detail: dict) -> str:
    value = detail.get("input")
    close = difflib.get_close_matches(value, _choices(detail), n=1) if isinstance(value, str) else []
    return f"; did you mean '{close[0]}'?" if close else ""
