"""promtool and amtool, run as subprocesses; a failure carries the tool's own output."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from gpuobs.errors import ToolError, UsageError

# libyaml where PyYAML was built with it: a fleet's test files run to megabytes, read and split per run.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
    # Duplicate rules (one name, one label set) would overwrite each other's series or alerts.
    return run(["promtool", "check", "rules", "--lint-fatal", *map(str, rule_files)])


def promtool_test_rules(test_files: list[Path], workers: int | None = None) -> str:
    """promtool's unit tests, the groups of each file split over one promtool per CPU (each group
    evaluates every rule at every step, so a fleet's tests take minutes in one process). Says
    SUCCESS once per file; a failure carries the output of every part that failed."""
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="gpuobs-promtool-") as tmp:
        parts: list[tuple[Path, Path]] = []  # (test file, part)
        for test_file in map(Path, test_files):
            document = yaml.load(test_file.read_text(encoding="utf-8"), Loader=YAML_LOADER)
            # Parts live elsewhere: their rule files are named by absolute path.
            rule_files = [str((test_file.parent / f).resolve()) for f in document.get("rule_files", [])]
            tests = document.get("tests") or []
            count = max(1, min(workers, len(tests)))
            for i in range(count):
                part = Path(tmp) / f"{test_file.stem}-{len(parts)}.yml"
                part.write_text(yaml.dump({**document, "rule_files": rule_files, "tests": tests[i::count]},
                                          Dumper=YAML_DUMPER, sort_keys=False), encoding="utf-8")
                parts.append((test_file, part))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_test_part, [part for _, part in parts]))
    failed = [output for ok, output in results if not ok]
    if failed:
        raise ToolError(["promtool", "test", "rules", *map(str, test_files)], "".join(failed))
    counts: dict[Path, int] = {}
    for test_file, _ in parts:
        counts[test_file] = counts.get(test_file, 0) + 1
    return "".join(f"Unit Testing:  {f}\n  SUCCESS ({n} promtool run{'s' * (n > 1)})\n" for f, n in counts.items())


def _test_part(part: Path) -> tuple[bool, str]:
    try:
        return True, run(["promtool", "test", "rules", str(part)])
    except ToolError as exc:
        return False, exc.output


def amtool_check_config(config: Path) -> str:
    return run(["amtool", "check-config", str(config)])


def amtool_route_tests(config: Path, tests: list[dict], workers: int | None = None) -> str:
    """Each case: its labels must reach exactly its receivers, in order. One amtool per case, a few
    at once (a fleet has a case per alert and owner)."""

    def check(case: dict) -> tuple[bool, str]:
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        expected = ",".join(case["receivers"])
        command = ["amtool", "config", "routes", "test", f"--config.file={config}",
                   f"--verify.receivers={expected}", *labels]
        try:
            run(command)
            return True, f"  ok   {case['name']}: {expected}"
        except ToolError as exc:
            return False, f"  FAIL {case['name']}: expected {expected}; amtool said: {exc.output.strip()}"

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(check, tests))
    failures = [line for ok, line in results if not ok]
    if failures:
        raise ToolError(["amtool", "config", "routes", "test", str(config)], "\n".join(failures))
    return f"{config}: {len(tests)} route tests passed\n"


def amtool_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    """The receivers an alert with `labels` reaches in `config`, as Alertmanager's own router says."""
    matchers = [f'{name}="{value}"' for name, value in sorted(labels.items())]
    output = run(["amtool", "config", "routes", "test", f"--config.file={config}", *matchers])
    return output.splitlines()[0].split(",")  # stdout's one line; amtool warns on stderr after it
