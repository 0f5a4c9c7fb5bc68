"""The health score as Prometheus computes it from its recorded components, in promtool: the
average of the five, and, for a GPU whose presence (recorded by another group) is not there yet,
the average of the components it has rather than a score that counts the missing ones as 0."""

import pytest
import yaml

from conftest import MINIMAL_SPEC, needs
from gpuobs import tools
from gpuobs.generate import load_model
from gpuobs.generators.rules import generate
from gpuobs.health import COMPONENTS

GPU = 'cluster="c1", host="h1", gpu="0", gpu_model="A100-SXM4-80GB"'


def health_group(tmp_path) -> dict:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(MINIMAL_SPEC))
    groups = [g for document in generate(load_model(path)).values() for g in document["groups"]]
    (group,) = [g for g in groups if g["name"] == "gpuobs.health"]
    return group


def score_of(tmp_path, components: dict[str, float]) -> str:
    """promtool's verdict on `gpu:health:score` being the average of `components`, given as the
    recorded component series of one GPU whose other inputs are all absent."""
    rules = tmp_path / "health.yml"
    rules.write_text(yaml.safe_dump({"groups": [health_group(tmp_path)]}))
    expected = sum(components.values()) / len(components)
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": f"gpu:health_{name}:score{{{GPU}}}", "values": f"{value}x3"}
                             for name, value in components.items()],
            "promql_expr_test": [{"expr": "gpu:health:score", "eval_time": "2m",
                                  "exp_samples": [{"labels": f"gpu:health:score{{{GPU}}}", "value": expected}]}],
        }],
    }
    tests = tmp_path / "health_test.yml"
    tests.write_text(yaml.safe_dump(test))
    return tools.promtool_test_rules([tests], workers=1)


def test_the_score_reads_every_component_with_one_selector(tmp_path):
    (score,) = [r for r in health_group(tmp_path)["rules"] if r.get("record") == "gpu:health:score"]
    assert all(name in score["expr"] for name in COMPONENTS)
    assert score["expr"].count("{__name__=~") == 1


@needs("promtool")
def test_the_score_averages_the_five_components(tmp_path):
    assert "SUCCESS" in score_of(tmp_path, dict(zip(COMPONENTS, (1, 0.5, 1, 0, 0.75), strict=True)))


@needs("promtool")
@pytest.mark.parametrize("known", [("ecc", "throttle"), ("thermal",)])
def test_a_gpu_not_yet_present_is_scored_by_the_components_it_has(tmp_path, known):
    """The CI failure this guards against: ecc and throttle read inputs of their own, the other
    three fall back on the GPU's presence, and a health evaluation before the presence was recorded
    gave healthy GPUs 2 / 5 = 0.4, below GPUHealthLow's default threshold."""
    assert "SUCCESS" in score_of(tmp_path, {name: 1 for name in known})
