"""Reading a YAML spec that may be hostile: UTF-8 only, bounded nesting and alias expansion (a
1.9 KB "billion laughs" file would otherwise become a million values), every problem one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from gpuobs.errors import Problem, SpecError, clipped, shown
from gpuobs.spec.paths import SourceMap, format_path

MAX_DEPTH = 64  # a spec nests about 8 levels; libyaml's composer overflows the stack near 30,000
MAX_ALIAS_VALUES = 100_000  # values aliases may add: 10,000 hosts sharing one `gpus: *x8`, with room

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):
    """Safe loading that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def read_spec_text(source: str, path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(source, [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(source, [Problem("", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                                         "cannot be read; save the file as UTF-8", line)]) from None


def parse_yaml(source: str, text: str) -> tuple[object, yaml.Node | None]:
    """The document's data, and its node graph (for the lines of problems)."""
    try:
        has_aliases = _check_nesting(source, text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and has_aliases:
                _check_aliases(source, node)
            return (loader.construct_document(node) if node is not None else None), node
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SpecError(source, [_yaml_problem(exc, text)]) from None
    except ValueError as exc:  # Python's own refusal of an integer of more than 4300 digits
        said = clipped(str(exc).split(";")[0])  # not its advice to the programmer
        raise SpecError(source, [Problem("", f"a value cannot be read: {said}")]) from None


def _yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        return Problem("", f"not valid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})",
                       text.count("\n", 0, exc.position) + 1)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return Problem("", f"not valid YAML: {problem}", mark.line + 1 if mark else None)


def _check_nesting(source: str, text: str) -> bool:
    """Refuse deep nesting from the event stream, before the (recursive) composer sees it; say
    whether the document has aliases (most have none, and need no measuring)."""
    depth, has_aliases = 0, False
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(source, [_too_deep(event.start_mark)])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            has_aliases = True
    return has_aliases


def _too_deep(mark) -> Problem:
    return Problem("", f"the document nests more than {MAX_DEPTH} levels deep; a spec needs about 8",
                   mark.line + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(source: str, root: yaml.Node) -> None:
    """Measure the document as if every alias were expanded, visiting each node once (so a bomb is
    measured without being expanded); refuse one that aliases make huge, deep or recursive."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_measured = stack.pop()
        if children_measured:
            parts = [measured[id(child)] for child in _children(node)]
            measured[id(node)] = (1 + sum(v for v, _ in parts), 1 + max((d for _, d in parts), default=0))
            open_nodes.discard(id(node))
        elif id(node) in open_nodes:  # reached again from inside itself
            raise SpecError(source, [Problem("", "an alias refers to a value that contains it; a spec cannot "
                                             "be recursive", node.start_mark.line + 1)])
        elif id(node) not in measured:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    values, depth = measured[id(root)]
    if values - len(measured) > MAX_ALIAS_VALUES:
        raise SpecError(source, [Problem("", f"aliases expand the document by {values - len(measured)} values, "
                                         f"more than the {MAX_ALIAS_VALUES} allowed (an alias bomb?); write the "
                                         "values out, or alias fewer")])
    if depth > MAX_DEPTH:
        raise SpecError(source, [_too_deep(root.start_mark)])


def source_map(root: yaml.Node | None) -> SourceMap:
    """Each path's line and plain scalar text; built only when there are problems to place."""
    found = SourceMap()
    if root is None:
        return found

    def walk(node, loc):
        found.lines[format_path(loc)] = node.start_mark.line + 1
        if _plain(node):
            found.scalars[format_path(loc)] = node.value
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = loc + (_key(key),)
                walk(value, path)
                found.lines[format_path(path)] = key.start_mark.line + 1
                if _plain(key):
                    found.keys[format_path(path)] = key.value
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, loc + (i,))

    walk(root, ())
    return found


def _plain(node: yaml.Node) -> bool:
    """A scalar written without quotes, which YAML may read as a number, boolean or null."""
    return isinstance(node, yaml.ScalarNode) and not node.style  # libyaml: '', PyYAML: None


_RESOLVER = yaml.resolver.Resolver()


def _key(node: yaml.Node):
    """A mapping key as pydantic's paths name it: as loading reads it (`01` is 1), a boolean (`on`)
    as 0 or 1."""
    if _plain(node) and _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False)) != _RESOLVER.DEFAULT_SCALAR_TAG:
        key = yaml.load(node.value, Loader=_Loader)
        return int(key) if isinstance(key, bool) else key
    return node.value if isinstance(node, yaml.ScalarNode) else shown(node.value)
