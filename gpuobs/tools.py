"""promtool and amtool, run as subprocesses; a failure carries the tool's own output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gpuobs.errors import ToolError, UsageError


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


def run(command: list[str], timeout: int = 600) -> str:
    if not available(command[0]):
        raise UsageError(f"{command[0]} is not on PATH; install it (Debian: apt-get install prometheus "
                         "prometheus-alertmanager)")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise ToolError(command, output)
    return output


def promtool_check_config(config: Path) -> str:
    return run(["promtool", "check", "config", str(config)])


def promtool_check_rules(rule_files: list[Path]) -> str:
    return run(["promtool", "check", "rules", *map(str, rule_files)])


def promtool_test_rules(test_files: list[Path]) -> str:
    # rule_files inside a test file are resolved relative to that file, so one call takes them all.
    return run(["promtool", "test", "rules", *map(str, test_files)])


def amtool_check_config(config: Path) -> str:
    return run(["amtool", "check-config", str(config)])


def amtool_route_tests(config: Path, tests: list[dict]) -> str:
    """Each case: its labels must reach exactly its receivers, in order."""
    failures, lines = [], []
    for case in tests:
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        expected = ",".join(case["receivers"])
        command = ["amtool", "config", "routes", "test", f"--config.file={config}",
                   f"--verify.receivers={expected}", *labels]
        try:
            run(command)
            lines.append(f"  ok   {case['name']}: {expected}")
        except ToolError as exc:
            failures.append(f"  FAIL {case['name']}: expected {expected}; amtool said: {exc.output.strip()}")
    if failures:
        raise ToolError(["amtool", "config", "routes", "test", str(config)], "\n".join(failures))
    return f"{config}: {len(tests)} route tests passed\n"


def amtool_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    """The receivers an alert with `labels` reaches in `config`, as Alertmanager's own router says."""
    matchers = [f'{name}="{value}"' for name, value in sorted(labels.items())]
    output = run(["amtool", "config", "routes", "test", f"--config.file={config}", *matchers])
    return output.splitlines()[0].split(",")  # stdout's one line; amtool warns on stderr after it
