"""The gpuobs command: exit codes, messages, and the JSON Schema it prints."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from promtool_helpers import only_tests

from conftest import MINIMAL_SPEC, ROOT, needs
from gpuobs.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_schema_is_valid_json_schema_that_accepts_the_examples_and_rejects_typos():
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for name in ("demo.yaml", "fleet.yaml"):
        validator.validate(yaml.safe_load((ROOT / "specs" / name).read_text()))
    typo = {**MINIMAL_SPEC, "hostz": []}
    assert list(validator.iter_errors(typo)), "an unknown top-level key must fail the schema"
    # A spec may describe GPU models of its own, so the built-in ones are suggestions for editors
    # to complete; an unknown name is the loader's error (tests/test_spec_errors.py).
    model_field = schema["$defs"]["Gpus"]["properties"]["model"]
    assert "A100-SXM4-80GB" in model_field["examples"] and "L40S" in model_field["examples"]


def test_generate_then_check_passes_and_detects_drift(tmp_path):
    spec = tmp_path / "alpha.yaml"
    spec.write_text(yaml.safe_dump(MINIMAL_SPEC))
    out = tmp_path / "out"
    result = run("generate", spec, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{out / 'alpha'}: 13 files" in result.output  # 6 Prometheus, 2 provisioning, 4 dashboards, README
    assert run("check", spec, "-o", out).exit_code == 0
    spec.write_text(yaml.safe_dump({**MINIMAL_SPEC, "prometheus": {"scrape_interval": "30s"}}))
    result = run("check", spec, "-o", out)
    assert result.exit_code == 1
    assert "-  scrape_interval: 15s\n+  scrape_interval: 30s" in result.output
    assert "stale; run: gpuobs generate" in result.stderr


@needs("promtool")
@needs("amtool")
def test_validate_runs_promtool_and_amtool_on_the_output():
    result = run("validate", ROOT / "specs" / "fleet.yaml")
    assert result.exit_code == 0, result.output
    assert "Checking" in result.output and "SUCCESS" in result.output
    assert "receivers" in result.output, "amtool check-config reports what it found"
    assert "specs/fleet.yaml: valid" in result.output


def test_validate_without_promtool_says_what_it_did_not_check(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run("validate", ROOT / "specs" / "demo.yaml")
    assert result.exit_code == 0
    assert "spec is valid; not checked with promtool, amtool (not on PATH)" in result.output


@needs("promtool")
@needs("amtool")
def test_test_command_runs_generated_tests_and_fails_on_a_broken_rule(tmp_path):
    # The smallest fleet: the committed specs' tests run in tests/test_promtool.py already.
    spec = tmp_path / "alpha.yaml"
    routed = {"alertmanager": {"receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:5001/"}}],
                               "routing": {"by_severity": {"critical": "hook", "warning": "hook"}}}}
    spec.write_text(yaml.safe_dump({**MINIMAL_SPEC, **routed}))
    assert run("generate", spec, "-o", tmp_path / "out").exit_code == 0
    result = run("test", tmp_path / "out" / "alpha")
    assert result.exit_code == 0, result.output + result.stderr
    assert result.output.count("SUCCESS") == 3  # two promtool test files, amtool check-config
    assert "route tests passed" in result.output
    # The first 60 s `for` is GPUThermalWarning's; its cases alone are enough to catch it dropped.
    alerts = tmp_path / "out" / "alpha" / "prometheus" / "rules" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("for: 60s", "for: 0s", 1))
    assert "alert: GPUThermalWarning\n    expr: gpu:temperature_past_warning:celsius\n    for: 0s" in alerts.read_text()
    only_tests(tmp_path / "out" / "alpha" / "prometheus" / "tests" / "alerts.yml", "GPUThermalWarning")
    result = run("test", tmp_path / "out")
    assert result.exit_code == 1
    assert "FAILED" in result.stderr


def test_test_command_on_a_folder_without_output_is_a_usage_error(tmp_path):
    result = run("test", tmp_path)
    assert result.exit_code == 2
    assert "no generated fleet output" in result.output


def test_python_dash_m_gpuobs_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "gpuobs", "--help"], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0
    for command in ("generate", "check", "validate", "test", "schema"):
        assert command in result.stdout


@pytest.mark.parametrize("args", [["generate"], ["check"], ["validate"]])
def test_missing_arguments_exit_2(args):
    assert run(*args).exit_code == 2


def test_every_command_lists_a_whole_sentence_even_in_a_narrow_terminal():
    """click cuts a short help at the first sentence, or mid-sentence with "..." past its limit;
    at click's narrowest layout (50 columns) the limit is 50 - 6 - the longest command name."""
    limit = 50 - 6 - max(len(name) for name in main.commands)
    for name, command in main.commands.items():
        short = command.get_short_help_str(limit)
        assert short.endswith(".") and not short.endswith("..."), (name, short)
        assert command.help.startswith(short), name
