"""Reading exposition text in tests: parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gpuobs import catalog

DCGM = catalog.GPUOBS_PROFILE
_KNOWN = set(DCGM.metrics.values())


def _served_name(sample):
    """prometheus_client's parser appends _total to counter samples named without it (dcgm's
    counters are); Prometheus keeps the name as served, so the tests compare that."""
    name = sample.name
    if name not in _KNOWN and name.endswith("_total") and name[:-6] in _KNOWN:
        return sample._replace(name=name[:-6])
    return sample


def samples(body: bytes | str) -> list:
    text = body.decode() if isinstance(body, bytes) else body
    return [_served_name(s) for family in text_string_to_metric_families(text) for s in family.samples]


def names(body) -> set[str]:
    return {s.name for s in samples(body)}


def find(body, key: str, **labels) -> list:
    """Samples of the catalog metric `key` whose labels include `labels`."""
    name = DCGM.metric(key)
    wanted = {k: str(v) for k, v in labels.items()}
    return [s for s in samples(body) if s.name == name and wanted.items() <= s.labels.items()]


def value(body, key: str, **labels) -> float:
    found = find(body, key, **labels)
    assert len(found) == 1, f"{key} {labels}: {len(found)} samples"
    return found[0].value


def get(url: str, headers: dict | None = None, timeout: float = 10, context=None):
    request = urllib.request.Request(url, headers=headers or {})
    return urllib.request.urlopen(request, timeout=timeout, context=context)


def dcgm_compatibility_findings(body: bytes) -> set[str]:
    """What promtool's lint says of dcgm-exporter's own names, which we keep on purpose: its
    counters lack _total, PCIE_REPLAY_COUNTER names its type, modelName is camelCase."""
    allowed = set()
    for family in {s.name for s in samples(body)}:
        metric = next(m for m in catalog.METRICS if DCGM.metric(m.key) == family)
        if metric.type == catalog.COUNTER and not family.endswith("_total"):
            allowed.add(f'{family} counter metrics should have "_total" suffix')
        if "COUNTER" in family:
            allowed.add(f"{family} metric name should not include type 'counter'")
        if metric.level != catalog.EXPORTER:
            allowed.add(f"{family} label names should be written in 'snake_case' not 'camelCase'")
    return allowed
