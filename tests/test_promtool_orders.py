"""The generated promtool tests pass whatever order promtool evaluates the rule groups in. A module
of its own: each order reruns every fleet's order-sensitive cases."""

import random
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SPECS, needs
from gpuobs import tools
from gpuobs.generate import load_model
from gpuobs.generators.rules import EVALUATION_ORDER

pytestmark = [needs("promtool")]


# Orders for group_eval_order other than the generated one (without the list, promtool draws one
# at random for each test group), with the specs whose tests run in each: reversed, each group
# evaluated before the groups it reads (every link of a chain a step late), for every spec; and a
# fixed shuffle for the demo (each order reruns every order-sensitive case, minutes for all specs).
ORDERS = {
    "reversed": (lambda names: names[::-1], SPECS),
    "shuffled": (lambda names: random.Random(14).sample(names, len(names)), [ROOT / "specs" / "demo.yaml"]),
}


def order_sensitive(groups: list[dict]) -> set[str]:
    """Alerts whose rules read a series some rule records. An alert over raw series alone sees the
    same in any group order, so only these alerts' cases, and the recording tests, can depend on it."""
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    return {r["alert"] for g in groups for r in g["rules"]
            if "alert" in r and any(name in r["expr"] for name in recorded)}


def reordered(prometheus: Path, target: Path, reorder) -> list[Path]:
    """The test files of a copy of a generated prometheus folder, evaluating the rule groups in the
    order `reorder` makes of the generated one, with the cases an order can touch."""
    shutil.copytree(prometheus, target)
    files = sorted((target / "tests").glob("*.yml"))
    for test_file in files:
        document = yaml.load(test_file.read_text(), Loader=tools.YAML_LOADER)
        groups = [g for path in document["rule_files"]
                  for g in yaml.load((test_file.parent / path).read_text(), Loader=tools.YAML_LOADER)["groups"]]
        document["group_eval_order"] = reorder(sorted({g["name"] for g in groups}, key=EVALUATION_ORDER.index))
        sensitive = order_sensitive(groups)
        document["tests"] = [t for t in document["tests"] if "promql_expr_test" in t
                             or sensitive & {check["alertname"] for check in t["alert_rule_test"]}]
        test_file.write_text(yaml.dump(document, Dumper=tools.YAML_DUMPER, sort_keys=False))
    return files


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
def test_generated_tests_pass_in_any_group_order(tmp_path, order):
    reorder, specs = ORDERS[order]
    files = []
    for spec in specs:
        name = load_model(spec).name
        files += reordered(ROOT / "generated" / name / "prometheus", tmp_path / name, reorder)
    assert "FAILED" not in tools.promtool_test_rules(files)
