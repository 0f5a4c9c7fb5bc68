"""The YAML writer: what it writes reads back as exactly the data it was given."""

import pytest
import yaml

from conftest import SPECS
from gpuobs.generate import GENERATORS, load_model
from gpuobs.render import dump_yaml

TRICKY = {
    "plain": "gpu-exporter", "keyword": "yes", "Keyword": "Off", "null-ish": "~", "number-like": "1.0",
    "int-like": "0755", "address": "10.0.0.1:9400", "ipv6": "[fd00::1]:9400", "colon-end": "a:",
    "colon-space": "a: b", "hash": "a #b", "quote": 'say "hi"', "apostrophe": "it's", "both": """it's "x" """,
    "backslash": "a\\b", "leading-space": " x", "empty": "",
    "unicode": "Grüße", "template": "{{ $labels.host }}", "star": "*alias", "dash": "- x",
    "multiline": "a\n  b\nc", "multiline-trailing-newline": "a\nb\n", "multiline-leading-space": "  a\nb",
    "blank-line": "a\n\nb", "tab": "a\tb", "json-text": '{\n  "a": [\n    1\n  ]\n}\n', "line-and-newline": "x\n",
    "two-trailing-newlines": "a\nb\n\n", "only-newline": "\n", "line-separator": "a\u2028b\nc", "nel": "a\x85b\nc",
    "space-line-last": "a\n ", "space-line-newline": "a\n  \n",
    "float": 0.1, "tiny": 1e-05, "big": 1e20, "int": 7, "neg": -3,
    "durations": ["60s", "1h30m", "100ms", "1e5", "1e"], "bool": True, "none": None, "empty-list": [], "empty-dict": {},
    "nested": [{"a": 1, "b": [1, "x"]}, {"c": {"d": "e"}}, "s", [], {}, ["inner", {"k": "v"}]],
    5: "int key", "true": "keyword key",
}


def test_tricky_values_read_back_exactly():
    assert yaml.safe_load(dump_yaml(TRICKY)) == TRICKY


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_generated_document_reads_back_exactly(spec):
    model = load_model(spec)
    for generate in GENERATORS:
        for path, document in generate(model).items():
            assert yaml.safe_load(dump_yaml(document)) == document, path
