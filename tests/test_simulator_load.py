"""Under load: 20 concurrent scrapers against 64 simulated GPUs, no failed scrape, memory flat.

The benchmark runs the same load for 60 s (benchmarks/scrape.py); the suite runs it for
GPUOBS_LOAD_SECONDS (default 10) to stay fast. Latency is reported by the benchmark, never
asserted here.
"""

import importlib.util
import os

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _benchmark():
    spec = importlib.util.spec_from_file_location("scrape_benchmark", ROOT / "benchmarks" / "scrape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_scrapers_against_64_gpus_never_fail_and_memory_stays_flat():
    seconds = float(os.environ.get("GPUOBS_LOAD_SECONDS", "10"))
    result = _benchmark().load(seconds=seconds, threads=20, gpus=64, warmup=2.0)
    assert result["failures"] == 0, result["first_failures"]
    assert result["scrapes"] > 20 * seconds, "every scraper kept scraping"
    growth = result["rss_end_mib"] - result["rss_start_mib"]
    assert growth < max(8.0, 0.15 * result["rss_start_mib"]), result
