import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").iterdir() if p.suffix in (".yaml", ".yml", ".py"))
REFERENCE = ROOT / "tests" / "reference"  # third-party data, vendored with its provenance


# The longest test files, longest first (measured on two cores). The workers take a file each at a
# time in collection order (`--no-loadscope-reorder`): a long file taken last would leave the others
# idle while it runs, so these go first and the short ones fill in behind them. The two end-to-end
# files lead: they mostly wait on their servers, and the promtool files use the cores meanwhile.
LONGEST_FIRST = ("test_e2e_alerts.py", "test_e2e_healthy.py", "test_promtool_variants.py", "test_promtool_orders.py",
                 "test_promtool.py", "test_cli.py", "test_dashboards_live.py", "test_federation_live.py",
                 "test_simulator_prometheus.py", "test_alertmanager_spec.py", "test_captures.py", "test_write_tree.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: each file keeps its own order


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite generated/ from specs/ instead of failing on differences")


@pytest.fixture
def nvml(monkeypatch):
    """nvml(gpus, **options) installs a fake NVML of those GPUs (tests/nvml_fake.py) for the test."""
    from nvml_fake import FakeNvml

    def make(gpus, **options) -> FakeNvml:
        return FakeNvml(gpus, **options).install(monkeypatch)
    return make


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def changed(base: dict, change) -> dict:
    """A deep copy of `base` with `change` (a function editing it in place) applied."""
    import copy

    data = copy.deepcopy(base)
    change(data)
    return data


def spec_problems(tmp_path: Path, data: dict) -> list:
    """The problems load_spec reports for `data` written as a YAML spec (it must fail)."""
    import yaml

    from gpuobs.errors import SpecError
    from gpuobs.spec import load_spec

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def until(condition, timeout: float, explain):
    """The first truthy result of `condition()`, polled until `timeout` seconds; else the test
    fails with `explain()`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(explain())


def wait_for(prom, query: str, timeout: float = 45) -> list:
    """The first non-empty result of `query` in a PrometheusServer, polled until `timeout`."""
    return until(lambda: prom.query(query), timeout,
                 lambda: f"nothing for {query} after {timeout}s:\n{prom.log()[-2000:]}")


def assert_one_problem(tmp_path: Path, base: dict, change, path: str, fragment: str) -> None:
    """`base` with `change` applied is refused with exactly one problem, at `path`, saying `fragment`."""
    found = spec_problems(tmp_path, changed(base, change))
    assert [p.path for p in found] == [path], found
    assert fragment in found[0].message


def needs(tool: str):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not on PATH")


@pytest.fixture(scope="module", params=["process", "container"])
def backend(request) -> str:
    """gpuobs.stack's server backend: tests taking this fixture run on Debian's binaries and, where a
    Docker engine answers, again on the upstream images through testcontainers."""
    from gpuobs.stack import docker_engine_available

    if request.param == "container" and not docker_engine_available():
        pytest.skip("no Docker engine answers; the process backend runs the same test")
    return request.param


MINIMAL_SPEC = {
    "clusters": [{"name": "c1"}],
    "hosts": [{"name": "h1", "cluster": "c1", "address": "127.0.0.1",
               "gpus": {"model": "A100-SXM4-80GB", "count": 8}}],
}


# Everything the spec can vary at once: models with and without T.Limit reporting or MIG, a model
# of the spec's own, per-model values that force model matchers, a renamed host label, alert
# overrides, and all three exporter kinds (dcgm-exporter with its default counters and with the set
# gpuobs generates).
VARIANTS = {
    "name": "variants",
    "clusters": [{"name": "c1", "labels": {"dc": "x"}},
                 {"name": "c2", "exporter": {"kind": "dcgm-exporter", "counters": "default"}},
                 {"name": "c3", "exporter": {"kind": "nvidia_gpu_exporter"}}],
    "gpu_models": [{"name": "a800-pcie", "nvml_name": "NVIDIA A800 80GB PCIe", "power_limit_watts": 300,
                    "gpu_temp_warning": 80, "gpu_temp_critical": 85, "memory_mib": 81920}],
    "hosts": [
        {"name": "l40s-1", "cluster": "c1", "address": "10.0.0.1", "gpus": {"model": "L40S", "count": 4}},
        {"name": "v100-1", "cluster": "c1", "address": "10.0.0.2", "node_exporter_port": None,
         "gpus": {"model": "V100-SXM2-32GB", "count": 8}},
        {"name": "a10-1", "cluster": "c2", "address": "10.0.0.3", "exporter_port": 19400,
         "gpus": {"model": "A10", "count": 2}},
        {"name": "h200-1", "cluster": "c2", "address": "10.0.0.4",
         "gpus": {"model": "H200-SXM5-141GB", "count": 8, "mig": {"profiles": ["7g.141gb"], "gpus": [7]}},
         "exporter": {"kind": "dcgm-exporter", "version": 3, "counters": "gpuobs"}},
        {"name": "a800-1", "cluster": "c3", "address": "10.0.0.5", "gpus": {"model": "a800-pcie", "count": 2}},
    ],
    "teams": [{"name": "t1", "hosts": ["l40s-1", "a10-1"]}],
    "thresholds": {
        "L40S": {"gpu_temp_margin_warning": 8, "ecc_correctable_warning": 3, "thermal_prediction_horizon": "20m"},
        "V100-SXM2-32GB": {"nvlink_errors_warning": 5, "pcie_replay_warning": 7, "health_score_warning": 0.6},
        "A10": {"gpu_temp_warning": 84, "memory_used_warning_ratio": 0.8, "power_critical_ratio": 1.3},
    },
    "alerts": {"GPUThermalCritical": {"severity": "warning", "for": "2m", "labels": {"page": "no"}},
               "GPUXidDrain": {"enabled": False}},
    "prometheus": {"host_label": "node", "alertmanagers": []},
    "efficiency": {"currency": "GBP", "energy_price_per_kwh": 0.3, "gpu_hour_price": {"L40S": 0.9, "A10": 0.5},
                   "clusters": {"c2": {"carbon_intensity": 200}}, "idle": {"threshold": 0.1, "for": "5m"}},
}


def faster_rule_file(source: Path, copy: Path, factor: float) -> Path:
    """A generated rule file written to `copy` with every group's own `interval` multiplied by
    `factor`: a test that runs the generated configuration on a faster clock keeps the tiers'
    ratios (a 120 s group at a 15 s evaluation becomes 8 s at 1 s)."""
    document = yaml.safe_load(source.read_text())
    for group in document["groups"]:
        if "interval" in group:
            group["interval"] = f"{max(1, round(float(group['interval'].rstrip('s')) * factor))}s"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return copy


def faster_rule_files(source: Path, files, out: Path, factor: float) -> list[str]:
    """faster_rule_file for each of `files` (relative to `source`), under `out`/rules."""
    return [str(faster_rule_file(source / name, out / "rules" / name, factor)) for name in files]


def one_second_config(source: Path, out: Path, target: str) -> Path:
    """The generated prometheus.yml in `source` on a 1 s clock (scrape, evaluation, and every rule
    group's interval divided alike), scraping only the GPU exporter, at `target`, with no
    Alertmanager; written with its rule files under `out`."""
    from gpuobs.promql import seconds

    config = yaml.safe_load((source / "prometheus.yml").read_text())
    factor = 1 / seconds(config["global"]["evaluation_interval"])
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = faster_rule_files(source, config["rule_files"], out, factor)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "gpu-exporter"]
    job["static_configs"][0]["targets"] = [target]
    config["scrape_configs"] = [job]
    config["alerting"] = {"alertmanagers": []}
    path = out / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path
