"""The committed generated/ output is exactly what specs/ produce.

On an intended change, regenerate explicitly: `pytest tests/test_golden.py --update-golden`
(or `gpuobs generate specs/* -o generated`) and review the diff before committing.
"""

import pytest

from conftest import ROOT, SPECS
from gpuobs.generate import check, generate


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_committed_output_matches_spec(spec, update_golden):
    out = ROOT / "generated"
    if update_golden:
        generate([spec], out)
    diffs = check([spec], out)
    assert not diffs, "generated/ is stale; rerun with --update-golden and review:\n" + "".join(diffs)[:20000]


def test_every_spec_has_committed_output():
    names = {p.name for p in (ROOT / "generated").iterdir() if p.is_dir()}
    expected = {"demo", "fleet", "lab"}
    assert expected <= names
    assert names <= {s.stem for s in SPECS}, "generated/ holds output of a spec that no longer exists"
