"""The generated promtool tests as data (tests/test_promtool.py runs them through promtool)."""

from gpuobs.generators.promtests import chain_lengths


def test_chain_lengths_count_the_groups_feeding_an_alert():
    groups = [
        {"name": "a", "rules": [{"alert": "Raw", "expr": "up == 0"},
                                {"record": "x:early:sum", "expr": "sum(up)"},
                                {"alert": "Early", "expr": "x:early:sum > 1"},
                                {"alert": "Late", "expr": "x:late:sum > 1"},
                                {"record": "x:late:sum", "expr": "sum(up)"}]},
        {"name": "b", "rules": [{"record": "x:b:sum", "expr": "x:early:sum + 1"},
                                {"alert": "Other", "expr": "x:b:sum > 1"}]},
        {"name": "c", "rules": [{"alert": "Far", "expr": "x:b:sum > 1 and x:early:sum > 0"}]},
    ]
    # Rules of one group run in order: only a series recorded after the alert, or in another group,
    # may be a step late.
    assert chain_lengths(groups) == {"Raw": 1, "Early": 1, "Late": 2, "Other": 2, "Far": 3}
