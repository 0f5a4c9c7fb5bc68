"""Checks of generated output by the real tools, shared by `gpuobs validate` and `gpuobs test`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from gpuobs import coverage, sizing, tools
from gpuobs.generate import load_model, render, write_tree

# Every fleet's output has it, whether one Prometheus or one per cluster runs the fleet.
MARKER = Path("prometheus/rules/alerts.yml")


def find_outputs(folder: Path) -> list[Path]:
    """Fleet output folders under `folder` (itself, or its children), found by their alert rules."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return [folder]
    return sorted(p.parents[2] for p in folder.glob(f"*/{MARKER}"))


def prometheus_configs(output: Path) -> list[Path]:
    """Every server's configuration: the fleet's one, or each cluster's (per replica) and the global tier's."""
    return sorted(p for p in (output / "prometheus").rglob("prometheus*.yml") if p.parent.name != "rules")


ALERTMANAGER_CONFIG = Path("alertmanager/alertmanager.yml")
ROUTE_TESTS = Path("alertmanager/tests/routes.yml")


def check_with_tools(output: Path) -> list[str]:
    """Static checks of one fleet's output; returns what each tool said. Tools not on PATH are skipped."""
    said = []
    if tools.available("promtool"):
        said += [tools.promtool_check_config(config) for config in prometheus_configs(output)]
        said.append(tools.promtool_check_rules(sorted((output / "prometheus").glob("**/rules/*.yml"))))
    if tools.available("amtool") and (output / ALERTMANAGER_CONFIG).is_file():
        said.append(tools.amtool_check_config(output / ALERTMANAGER_CONFIG))
    return said


def run_tests(output: Path) -> str:
    """The generated unit tests of one fleet's output: promtool's, then the routing tests."""
    said = tools.promtool_test_rules(sorted((output / "prometheus" / "tests").glob("*.yml")))
    if (output / ALERTMANAGER_CONFIG).is_file():
        said += tools.amtool_check_config(output / ALERTMANAGER_CONFIG)
        cases = yaml.safe_load((output / ROUTE_TESTS).read_text(encoding="utf-8"))["tests"]
        said += tools.amtool_route_tests(output / ALERTMANAGER_CONFIG, cases)
    return said


def validate_spec(spec_path: Path) -> list[str]:
    """Load the spec (raising SpecError on problems), say which alerts each exporter setup leaves
    blind and which Prometheus would hold more GPUs than it evaluates rules for in time, then let
    the tools check its output."""
    model = load_model(spec_path)
    with tempfile.TemporaryDirectory(prefix="gpuobs-validate-") as tmp:
        target = Path(tmp) / model.name
        write_tree(target, render(model))
        return coverage.report(model) + sizing.report(model) + check_with_tools(target)
