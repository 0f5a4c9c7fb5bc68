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
