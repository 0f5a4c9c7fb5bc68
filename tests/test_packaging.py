"""The wheel a user installs: gpuobs, and exporters/ as gpuobs_exporters (a top-level `exporters`
would take a name other distributions use), with both programs running from a fresh environment.

pip builds the wheel as the image does, in an isolated environment with the setuptools that
pyproject.toml asks for: the one installed here may be older than the project needs."""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import MINIMAL_SPEC, ROOT
from gpuobs.stack import free_port

pytestmark = pytest.mark.slow

# Nothing of the source tree or the outer environment's settings may leak into the fresh one.
_ENV = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
_PACKAGES = {"gpuobs": "gpuobs", "exporters": "gpuobs_exporters"}  # folder: the name it installs as


def _modules() -> list[str]:
    """Every module of the source tree, by its path in the wheel."""
    return [f"{_PACKAGES[folder]}/{p.relative_to(ROOT / folder).as_posix()}"
            for folder in _PACKAGES for p in (ROOT / folder).rglob("*.py")]


def _package_data() -> list[str]:
    """Every file a package reads at run time besides its modules: the fleet README's template, the
    kubelet API's descriptor and its proto."""
    files = [*(ROOT / "gpuobs" / "generators" / "templates").iterdir(),
             *(p for p in (ROOT / "exporters" / "kubelet").iterdir() if p.suffix in (".binpb", ".proto"))]
    return [f"{_PACKAGES[p.relative_to(ROOT).parts[0]]}/{p.relative_to(ROOT).as_posix().split('/', 1)[1]}"
            for p in files]


def _run(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=_ENV, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the image copies, so the build writes nothing into the repository."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for name in _PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    result = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, source], source)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_every_module_under_our_own_names(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"gpuobs", "gpuobs_exporters"}
    assert sorted(set(_modules()) - names) == [], "pyproject.toml's packages list lacks these"
    assert sorted(set(_package_data()) - names) == [], "pyproject.toml's package-data lacks these"
    entry_points = next(zipfile.Path(wheel, n).read_text() for n in names if n.endswith("entry_points.txt"))
    assert "gpuobs-exporter = gpuobs_exporters.nvml_exporter:main" in entry_points
    assert "gpuobs-simulator = gpuobs_exporters.simulator.cli:main" in entry_points


@contextlib.contextmanager
def _serving(argv: list, port: int, cwd: Path):
    """A program started from the venv, until its /metrics on `port` answers (bounded)."""
    process = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                    metrics = answer.read().decode()
                break
            except OSError:
                assert process.poll() is None, f"{argv[0]} exited: {process.stderr.read()}"
                assert time.monotonic() < deadline, f"{argv[0]} did not serve /metrics within 30 s"
                time.sleep(0.2)
        yield metrics
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_both_programs_run_from_a_fresh_environment(wheel, tmp_path):
    home = tmp_path / "venv"
    try:  # the dependencies come from the outer environment: no registry needed
        venv.create(home, system_site_packages=True, with_pip=False)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot create a virtual environment: {exc}")
    python = home / "bin" / "python"
    # The outer pip, run by the venv's interpreter, installs into the venv; --ignore-installed
    # leaves the outer gpuobs (often an editable install) alone: the venv's own shadows it.
    result = _run([python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "--quiet", wheel], tmp_path)
    assert result.returncode == 0, result.stderr
    # Every module imports in the installed layout (relative imports included), and from the venv:
    # an outer editable install's finder would serve any module the wheel lacks.
    probe = """
import importlib, pkgutil, sys
for top in ("gpuobs", "gpuobs_exporters"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(sys.modules["gpuobs_exporters"].VERSION)
for name, module in sys.modules.items():
    if name.split(".")[0] in ("gpuobs", "gpuobs_exporters", "exporters"):
        print(module.__file__)
"""
    result = _run([python, "-I", "-c", probe], tmp_path)
    assert result.returncode == 0, result.stderr
    version, *files = result.stdout.split()
    assert [f for f in files if not Path(f).resolve().is_relative_to(home.resolve())] == []
    assert len(files) == len([m for m in _modules() if not m.endswith("/__main__.py")])
    assert version == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for program in ("gpuobs-exporter", "gpuobs-simulator", "gpuobs"):
        result = _run([home / "bin" / program, "--help"], tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"sage: {program} " in result.stdout  # argparse's "usage:", click's "Usage:"
    # What a user does next, from a folder outside the repository: generate from their own spec,
    # then start both programs (the exporter without a GPU here, as it allows).
    spec = tmp_path / "fleet.yaml"
    spec.write_text(yaml.safe_dump(MINIMAL_SPEC))
    result = _run([home / "bin" / "gpuobs", "generate", spec, "-o", tmp_path / "out"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "fleet" / "prometheus" / "rules" / "alerts.yml").is_file()
    port = free_port()
    with _serving([home / "bin" / "gpuobs-simulator", "--hosts", 1, "--gpus", 2, "--base-port", port,
                   "--control-address", f"127.0.0.1:{free_port()}"], port, tmp_path) as metrics:
        assert "DCGM_FI_DEV_GPU_TEMP{" in metrics
    port = free_port()
    with _serving([home / "bin" / "gpuobs-exporter", "--allow-no-gpu", "--web.listen-address", f"127.0.0.1:{port}"],
                  port, tmp_path) as metrics:
        assert "gpuobs_exporter_build_info{" in metrics
