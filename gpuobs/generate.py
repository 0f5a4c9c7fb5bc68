"""spec files -> {relative path: text}, written (gpuobs/output.py) or compared with what is on disk."""

from __future__ import annotations

import difflib
from pathlib import Path

from gpuobs.errors import UsageError
from gpuobs.generators import (
    alertmanager,
    dcgm_counters,
    federation,
    grafana,
    kubernetes,
    prometheus,
    promtests,
    readme,
    rules,
)
from gpuobs.model import FleetModel, build_model
from gpuobs.output import write_tree
from gpuobs.render import to_json, to_yaml
from gpuobs.spec import load_spec

GENERATORS = (prometheus.generate, federation.generate, rules.generate, promtests.generate, alertmanager.generate,
              grafana.generate, kubernetes.generate, dcgm_counters.generate, readme.generate)


def load_model(spec_path: str | Path) -> FleetModel:
    """The spec's model. Headers name the spec by its file name alone: any folder in it (relative to
    the output, the working directory or a repository root) would make the bytes depend on where the
    command runs or where a checkout keeps its .git."""
    spec_path = Path(spec_path)
    fleet = load_spec(spec_path)
    return build_model(fleet, fleet.name or spec_path.stem, spec_path.name)


def render(model: FleetModel) -> dict[str, str]:
    texts: dict[str, str] = {}
    for generate in GENERATORS:
        for path, document in generate(model).items():
            if path.endswith(".json"):
                texts[path] = to_json(document)  # the dashboard's description names the spec
                continue
            if isinstance(document, str):  # a text format of its own, header included
                texts[path] = document
                continue
            preamble = prometheus.retention_guidance(model, path) if prometheus.is_config(path) else ""
            texts[path] = to_yaml(document, model.source, preamble)
    return dict(sorted(texts.items()))


def render_specs(spec_paths) -> dict[str, dict[str, str]]:
    """{fleet name: {relative path: text}} for every spec; all specs load before anything is written."""
    outputs: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for spec_path in spec_paths:
        model = load_model(spec_path)
        if model.name in outputs:
            raise UsageError(f"{spec_path}: fleet name '{model.name}' is also produced by {origin[model.name]}; "
                             "set a distinct `name:` in one of them")
        outputs[model.name] = render(model)
        origin[model.name] = str(spec_path)
    return outputs


def generate(spec_paths, out_dir) -> dict[str, dict[str, str]]:
    out_dir = Path(out_dir)
    outputs = render_specs(spec_paths)
    for name, files in outputs.items():
        write_tree(out_dir / name, files)
    return outputs


def _on_disk(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check(spec_paths, out_dir) -> list[str]:
    """Unified diffs between what the specs generate and what `out_dir` holds; empty when current."""
    out_dir = Path(out_dir)
    diffs = []
    for name, files in render_specs(spec_paths).items():
        disk = _on_disk(out_dir / name)
        for rel in sorted(set(files) | set(disk)):
            old, new = disk.get(rel), files.get(rel)
            if old == new:
                continue
            label = f"{out_dir.as_posix()}/{name}/{rel}"
            diffs.append("".join(difflib.unified_diff(
                (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                fromfile=label if old is not None else "/dev/null",
                tofile=label if new is not None else "/dev/null")))
    return diffs
