"""The spec that varies everything at once (conftest.VARIANTS) generates output promtool and amtool
accept, with the per-model, per-exporter and renamed-label rules it asks for. A module of its own:
its tests take over a minute, and the workers take a file each at a time."""

import re

from promtool_helpers import generated_folder

from conftest import VARIANTS, needs
from gpuobs.validate import check_with_tools, run_tests

pytestmark = [needs("promtool"), needs("amtool")]


def test_variant_spec_passes_promtool(tmp_path):
    output = generated_folder(tmp_path, VARIANTS)
    check_with_tools(output)
    run_tests(output)
    alerts = (output / "prometheus" / "rules" / "alerts.yml").read_text()
    assert re.search(r'gpu_model=~?"[^"]*L40S', alerts), "per-model thresholds must produce model matchers"
    assert 'job="dcgm-exporter' in alerts and 'job="nvidia-gpu-exporter"' in alerts
    assert "$labels.node }}" in alerts and "$labels.host }}" not in alerts
    assert "GPUXidDrain" not in alerts
