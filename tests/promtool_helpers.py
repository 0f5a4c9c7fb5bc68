"""Generated output in a temporary folder, and a test file cut down to some of its cases, for the
promtool test modules."""

from pathlib import Path

import yaml

from gpuobs.generate import load_model, render, write_tree


def generated_folder(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / f"{spec.get('name', 'spec')}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    model = load_model(path)
    target = tmp_path / "out" / model.name
    write_tree(target, render(model))
    return target


def only_tests(test_file: Path, prefix: str) -> None:
    document = yaml.safe_load(test_file.read_text())
    document["tests"] = [t for t in document["tests"] if t["name"].startswith(prefix)]
    assert document["tests"]
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
