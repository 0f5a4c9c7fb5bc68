"""`gpuobs validate` warns when one Prometheus would hold more GPUs than it evaluates the rules for
within a tenth of its interval, and says what to do."""

import yaml
from click.testing import CliRunner

from conftest import MINIMAL_SPEC
from gpuobs import sizing
from gpuobs.cli import main
from gpuobs.generate import load_model


def model_of(tmp_path, hosts: int, **extra):
    host = MINIMAL_SPEC["hosts"][0]
    spec = {**MINIMAL_SPEC, "clusters": [{"name": "c1"}, {"name": "c2"}], **extra, "hosts": [
        {**host, "name": f"h{i}", "cluster": f"c{i % 2 + 1}", "address": f"10.0.{i // 256}.{i % 256}"}
        for i in range(hosts)]}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, load_model(path)


def test_one_prometheus_over_the_measured_size_is_a_warning_naming_the_remedy(tmp_path):
    hosts = sizing.GPUS_AT_15S // 8 + 1
    path, model = model_of(tmp_path, hosts)
    (line,) = sizing.report(model)
    assert f"one Prometheus for {hosts * 8:,} GPUs" in line and "a Prometheus of its own" in line
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: one Prometheus for" in result.output


def test_the_limit_follows_the_interval_and_the_per_cluster_layout(tmp_path):
    hosts = sizing.GPUS_AT_15S // 8 + 1
    assert sizing.report(model_of(tmp_path, hosts, prometheus={"evaluation_interval": "30s"})[1]) == []
    per_cluster = {"clusters": [{"name": "c1", "prometheus": {}}, {"name": "c2", "prometheus": {}}]}
    assert sizing.report(model_of(tmp_path, hosts, **per_cluster)[1]) == []
    (line,) = sizing.report(model_of(tmp_path, 2 * hosts + 2, **per_cluster)[1])[:1]
    assert "cluster c1's Prometheus holds" in line


def test_a_fleet_within_the_size_gets_no_warning(tmp_path):
    assert sizing.report(model_of(tmp_path, 4)[1]) == []
