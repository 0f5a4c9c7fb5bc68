"""exporters/Dockerfile cannot be built here (no Docker daemon): check what it would install and
run, and that the exporters' imports stay within what it installs."""

import json
import re
import subprocess
import sys
import tomllib

from conftest import ROOT

DOCKERFILE = ROOT / "exporters" / "Dockerfile"
EXCLUDED = ("grafanalib", "jinja2", "click")


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_slim_python_base_and_no_generator_dependencies():
    steps = instructions()
    assert [arg.split()[0] for op, arg in steps if op == "FROM"] == ["python:3.11-slim"] * 2
    installs = " ".join(arg for op, arg in steps if op == "RUN" and "pip" in arg)
    assert not any(name in installs.lower() for name in EXCLUDED)
    project_installs = [arg for op, arg in steps if op == "RUN" and ("wheel" in arg or "/wheels/" in arg)]
    assert project_installs and all("--no-deps" in arg for arg in project_installs)
    assert "nvidia-ml-py" in installs and "pynvml" not in installs.replace("nvidia-ml-py", "")


def test_the_entrypoint_is_a_console_script_of_the_project():
    steps = dict(instructions())
    entrypoint = json.loads(steps["ENTRYPOINT"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["gpuobs-exporter"]
    assert scripts["gpuobs-exporter"] == "gpuobs_exporters.nvml_exporter:main"
    assert scripts["gpuobs-simulator"] == "gpuobs_exporters.simulator.cli:main"
    assert json.loads(steps["CMD"]) == ["--web.listen-address=:9400"]


def test_the_exporters_import_nothing_the_image_lacks():
    """Both programs, a spec load included, with the generator's dependencies made unimportable."""
    probe = f"""
import sys
for name in {EXCLUDED!r}:
    sys.modules[name] = None  # any import of these now fails
from exporters import nvml_exporter
from exporters.simulator import cli
from exporters.simulator.layout import from_spec
from_spec({str(ROOT / "specs" / "demo.yaml")!r})
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_image_and_both_extras_ask_for_the_same_floors():
    """Everything the exporter extra installs is in the image at its floor, and tested at it."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = " ".join(arg for op, arg in instructions() if op == "RUN" and "pip" in arg)
    for requirement in extras["exporter"]:
        assert f'"{requirement}"' in installs, requirement
        name = requirement.split(">=")[0]
        assert {r for r in extras["test"] if r.split(">=")[0] == name} == {requirement}, name
