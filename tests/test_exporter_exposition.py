"""The exposition both programs serve: names, HELP and TYPE from the catalog, dcgm-exporter's
labels, no sentinel values, one body (and one gzip body) per snapshot."""

import gzip
import threading

from exposition_helpers import DCGM, samples

from exporters.exposition import EXPORTER, HEADERS, Builder, Snapshot, gpu_entity
from exporters.gpu import add_clock_events, add_xids
from exporters.xid import XidLog
from gpuobs import catalog


def test_help_and_type_come_from_the_catalog():
    for key, header in HEADERS.items():
        metric = catalog.BY_KEY[key]
        expected_type = "counter" if metric.type == catalog.COUNTER else "gauge"
        assert header == (f"# HELP {DCGM.metric(key)} {metric.help}\n"
                          f"# TYPE {DCGM.metric(key)} {expected_type}\n")
    served_levels = {catalog.BY_KEY[k].level for k in HEADERS}
    assert served_levels == {catalog.GPU, catalog.INSTANCE, catalog.EXPORTER}, "rule-made metrics are never served"


def test_gpu_and_instance_labels_follow_dcgm_exporter_template_order():
    gpu = gpu_entity(3, "GPU-abc", "00000000:47:00.0", "NVIDIA A100-SXM4-80GB", "node-1")
    assert gpu.labels == ('gpu="3",UUID="GPU-abc",pci_bus_id="00000000:47:00.0",device="nvidia3",'
                          'modelName="NVIDIA A100-SXM4-80GB",hostname="node-1"')
    instance = gpu_entity(3, "GPU-abc", "00000000:47:00.0", "NVIDIA A100-SXM4-80GB", "node-1", "3g.40gb", 2)
    assert instance.labels == ('gpu="3",UUID="GPU-abc",pci_bus_id="00000000:47:00.0",device="nvidia3",'
                               'modelName="NVIDIA A100-SXM4-80GB",GPU_I_PROFILE="3g.40gb",GPU_I_ID="2",'
                               'hostname="node-1"')


def test_label_values_are_escaped_and_parse_back():
    entity = gpu_entity(0, 'GPU-"quoted"', "0\\1", "line\nbreak", "host")
    builder = Builder()
    builder.add("gpu_temp", entity, 40)
    (sample,) = samples(builder.render())
    assert sample.labels["UUID"] == 'GPU-"quoted"'
    assert sample.labels["pci_bus_id"] == "0\\1"
    assert sample.labels["modelName"] == "line\nbreak"


def test_non_finite_values_are_refused_not_served():
    entity = gpu_entity(0, "GPU-a", "bus", "model", "host")
    builder = Builder()
    assert builder.add("power_usage", entity, float("nan")) is False
    assert builder.add("power_usage", entity, float("inf")) is False
    assert builder.add("gpu_temp", entity, True) is True
    text = builder.render().decode()
    assert text.splitlines()[-1].endswith("} 1")
    assert "DCGM_FI_DEV_POWER_USAGE" not in text


def test_families_without_samples_are_left_out_and_samples_group_by_family():
    a, b = (gpu_entity(i, f"GPU-{i}", "bus", "model", "host") for i in range(2))
    builder = Builder()
    builder.add("gpu_temp", a, 40)
    builder.add("power_usage", a, 100.5)
    builder.add("gpu_temp", b, 41)
    text = builder.render().decode()
    assert text.count("# TYPE") == 2
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split("{")[0] for line in lines] == ["DCGM_FI_DEV_GPU_TEMP"] * 2 + ["DCGM_FI_DEV_POWER_USAGE"]


def test_exporter_level_series_have_no_identity_labels():
    builder = Builder()
    builder.add("exporter_collection_duration", EXPORTER, 0.5)
    builder.add("exporter_collection_errors", EXPORTER, 2, (("gpu", "1"), ("field", "power_usage")))
    lines = builder.render().decode().splitlines()
    assert lines[2] == "gpuobs_exporter_collection_duration_seconds 0.5"
    assert lines[5] == 'gpuobs_exporter_collection_errors_total{gpu="1",field="power_usage"} 2'


def test_clock_event_flags_and_bitmask_agree():
    entity = gpu_entity(0, "GPU-a", "bus", "model", "host")
    builder = Builder()
    mask = catalog.CLOCK_EVENT_BITS["hw_thermal"] | catalog.CLOCK_EVENT_BITS["hw_slowdown"]
    add_clock_events(builder, entity, mask)
    parsed = samples(builder.render())
    flags = {s.labels["reason"]: s.value for s in parsed if s.name == DCGM.metric("clock_event_active")}
    assert flags == {r: (1 if r in ("hw_thermal", "hw_slowdown") else 0) for r in catalog.CLOCK_EVENT_BITS}
    assert [s.value for s in parsed if s.name == DCGM.metric("clock_event_reasons")] == [mask]


def test_xids_are_counted_per_code_with_last_seen_and_dcgms_last_value_gauge():
    log = XidLog()
    log.record(0, 79, 100.0)
    log.record(0, 13, 150.0)
    log.record(0, 13, 200.0)
    entity = gpu_entity(0, "GPU-a", "bus", "model", "host")
    builder = Builder()
    add_xids(builder, entity, log.get(0))
    add_xids(builder, entity, log.get(1))  # no XIDs on GPU 1: nothing at all
    parsed = samples(builder.render())
    counts = {s.labels["xid"]: s.value for s in parsed if s.name == DCGM.metric("xid_errors")}
    seen = {s.labels["xid"]: s.value for s in parsed if s.name == DCGM.metric("xid_last_seen")}
    (last,) = [s for s in parsed if s.name == DCGM.metric("xid_last")]
    assert counts == {"13": 2, "79": 1} and seen == {"13": 200.0, "79": 100.0}
    assert last.value == 13 and last.labels["err_code"] == "13"
    assert last.labels["err_msg"] == "Graphics Engine Exception"


def test_concurrent_gzip_scrapes_share_one_compression(monkeypatch):
    body = b"x 1\n" * 100_000
    snapshot = Snapshot(body)
    compressions = []
    import zlib

    real = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj", lambda *a: compressions.append(a) or real(*a))
    results = []
    threads = [threading.Thread(target=lambda: results.append(snapshot.gzip_body())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(compressions) == 1
    assert all(r is results[0] for r in results)
    assert gzip.decompress(results[0]) == body


def test_snapshots_are_compressed_ahead_while_gzip_scrapes_keep_coming(monkeypatch):
    first = Snapshot(b"a 1\n")
    assert first._gzip is None and Snapshot(b"a 2\n", previous=first)._gzip is None, "nobody asked for gzip yet"
    first.gzip_body()
    second = Snapshot(b"a 2\n", previous=first)
    third = Snapshot(b"a 3\n", previous=second)  # no scrape of the second: still compressed ahead
    assert second._gzip is not None and third._gzip is not None
    later = third.gzip_seen + Snapshot.PRECOMPRESS_FOR + 1
    monkeypatch.setattr("exporters.exposition.time.monotonic", lambda: later)
    assert Snapshot(b"a 4\n", previous=third)._gzip is None, "gzip scrapes stopped: compress on demand again"
