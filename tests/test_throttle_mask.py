"""The hardware-slowdown test on NVML's clock-event bitmask, as Prometheus computes it: one reading
of the mask, arithmetic instead of a test per bit. promtool evaluates it on every mask of the ten
bits NVML defines, and it must pick exactly those with hw_slowdown, hw_thermal or hw_power_brake."""

import yaml

from conftest import needs
from gpuobs import tools
from gpuobs.catalog import CLOCK_EVENT_BITS, HW_THROTTLE_REASONS
from gpuobs.series import HW_LOWEST_BIT, hw_bits_set

MASKS = range(2 * max(CLOCK_EVENT_BITS.values()))
HARDWARE = sum(CLOCK_EVENT_BITS[r] for r in HW_THROTTLE_REASONS)


def test_the_hardware_bits_are_the_lowest_filtered_and_the_top_two_of_the_five_read():
    """What hw_bits_set assumes: bits 3, 6 and 7, the filter at the lowest of them."""
    assert {CLOCK_EVENT_BITS[r] for r in HW_THROTTLE_REASONS} == {HW_LOWEST_BIT, 8 * HW_LOWEST_BIT, 16 * HW_LOWEST_BIT}


@needs("promtool")
def test_exactly_the_masks_with_a_hardware_bit_pass(tmp_path):
    rules = tmp_path / "none.yml"
    rules.write_text(yaml.safe_dump({"groups": []}))
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": f'mask{{mask="{m}"}}', "values": f"{m}x2"} for m in MASKS],
            "promql_expr_test": [{
                "expr": hw_bits_set(f"(mask >= {HW_LOWEST_BIT})"),
                "eval_time": "1m",
                # The comparisons keep each mask's own series; the arithmetic leaves min(b, 7.5) % 2.
                "exp_samples": [{"labels": f'{{mask="{m}"}}', "value": min(m // HW_LOWEST_BIT % 32, 7.5) % 2}
                                for m in MASKS if m & HARDWARE],
            }],
        }],
    }
    tests = tmp_path / "mask_test.yml"
    tests.write_text(yaml.safe_dump(test))
    assert "SUCCESS" in tools.promtool_test_rules([tests], workers=1)
