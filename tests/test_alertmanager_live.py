"""Inhibition, routing and grouping of the generated alertmanager.yml, in a real Alertmanager.

The config comes from the same generator as every other; only its receivers point at a webhook
sink in this test (one path per receiver), so each notification can be attributed.
"""

import datetime
import time

import pytest
import yaml

from conftest import MINIMAL_SPEC, needs
from gpuobs.alerts import BY_NAME
from gpuobs.generate import load_model, render, write_tree
from gpuobs.stack import AlertmanagerServer
from webhook_sink import Sink

pytestmark = needs("prometheus-alertmanager")


HOSTS = ["inhibit-gpu", "inhibit-host-a", "inhibit-host-b", "missing", "quarantine", "grouping", "follow-on"]


@pytest.fixture(scope="module")
def sink():
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, sink, backend):
    spec = {
        "name": "live",
        "clusters": [{"name": "c1"}],
        "hosts": [{"name": h, "cluster": "c1", "address": f"10.0.0.{i + 1}",
                   "gpus": {"model": "A100-SXM4-80GB", "count": 8}} for i, h in enumerate(HOSTS)],
        "alertmanager": {
            "receivers": [{"name": name, "webhook": {"url": f"{sink.url}/{name}"}}
                          for name in ("pager", "tickets", "automation")],
            "routing": {"by_severity": {"critical": "pager", "warning": "tickets", "info": "tickets"},
                        "by_action": {"quarantine": "automation"},
                        "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        },
    }
    folder = tmp_path_factory.mktemp("live")
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL_SPEC, **spec}))
    model = load_model(path)
    write_tree(folder / "out", render(model))
    with AlertmanagerServer(folder / "out" / "alertmanager" / "alertmanager.yml", backend=backend) as am:
        am.model = model
        yield am


def alert(name: str, host: str, gpu: str | None = None, **extra: str) -> dict:
    definition = BY_NAME[name]
    labels = {"alertname": name, "severity": definition.severity, "action": definition.action,
              "family": definition.family, "cluster": "c1", "host": host, **extra}
    if gpu is not None:
        labels["gpu"] = gpu
    now = datetime.datetime.now(datetime.UTC)
    return {"labels": labels, "annotations": {"summary": definition.summary},
            "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(minutes=10)).isoformat()}


def states(am, host: str, timeout: float = 20) -> dict:
    """{(alertname, gpu): state} for a host, once every alert of it has been processed."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [a for a in am.alerts() if a["labels"].get("host") == host]
        result = {(a["labels"]["alertname"], a["labels"].get("gpu")): a["status"]["state"] for a in mine}
        settled = all(s in ("active", "suppressed") for s in result.values())
        if settled or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def wait_state(am, host: str, key: tuple, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = states(am, host)
        if current.get(key) == state:
            return current
        time.sleep(0.2)
    raise AssertionError(f"{key} on {host} never became {state}: {states(am, host)}")


def test_critical_inhibits_warning_on_the_same_gpu_not_its_neighbour(alertmanager, sink):
    host = "inhibit-gpu"
    alertmanager.post_alerts([alert("GPUThermalCritical", host, "0"), alert("GPUThermalWarning", host, "0"),
                              alert("GPUThermalWarning", host, "1")])
    result = wait_state(alertmanager, host, ("GPUThermalWarning", "0"), "suppressed")
    assert result[("GPUThermalWarning", "1")] == "active"
    assert result[("GPUThermalCritical", "0")] == "active"
    sink.wait_for("tickets", host, {"GPUThermalWarning"})
    ticketed = {a["labels"]["gpu"] for n in sink.notifications("tickets", host) for a in n["alerts"]}
    assert ticketed == {"1"}, "the inhibited warning of GPU 0 must not be notified"
    sink.wait_for("pager", host, {"GPUThermalCritical"})


def test_a_follow_on_xid_is_held_back_while_its_cause_alerts_on_the_same_gpu(alertmanager, sink):
    """XID 45 (the driver tearing work down) after XID 48 on GPU 0 is the 48's consequence; on GPU 1,
    alone, it reaches the owners."""
    host = "follow-on"
    alertmanager.post_alerts([alert("GPUXidReset", host, "0", xid="48"),
                              alert("GPUXidApplication", host, "0", xid="45"),
                              alert("GPUXidApplication", host, "1", xid="45")])
    result = wait_state(alertmanager, host, ("GPUXidApplication", "0"), "suppressed")
    assert result[("GPUXidApplication", "1")] == "active"
    sink.wait_for("tickets", host, {"GPUXidApplication"})
    told = {a["labels"]["gpu"] for n in sink.notifications("tickets", host) for a in n["alerts"]}
    assert told == {"1"}, "the follow-on of GPU 0 must not be notified"


def test_exporter_down_inhibits_that_hosts_gpu_alerts_only(alertmanager):
    down, other = "inhibit-host-a", "inhibit-host-b"
    alertmanager.post_alerts([alert("GPUExporterDown", down), alert("GPUThermalWarning", down, "0"),
                              alert("GPUEccUncorrectable", down, "2"), alert("GPUThermalWarning", other, "0")])
    wait_state(alertmanager, down, ("GPUThermalWarning", "0"), "suppressed")
    wait_state(alertmanager, down, ("GPUEccUncorrectable", "2"), "suppressed")
    assert states(alertmanager, down)[("GPUExporterDown", None)] == "active"
    assert states(alertmanager, other)[("GPUThermalWarning", "0")] == "active"


def test_a_missing_gpu_inhibits_its_own_alerts_only(alertmanager):
    host = "missing"
    alertmanager.post_alerts([alert("GPUMissing", host, "3"), alert("GPUEccUncorrectable", host, "3"),
                              alert("GPUEccUncorrectable", host, "2")])
    result = wait_state(alertmanager, host, ("GPUEccUncorrectable", "3"), "suppressed")
    assert result[("GPUEccUncorrectable", "2")] == "active"


def test_quarantine_reaches_the_pager_and_the_automation_webhook(alertmanager, sink):
    host = "quarantine"
    alertmanager.post_alerts([alert("GPUEccUncorrectable", host, "5")])
    for receiver in ("pager", "automation"):
        notification = sink.wait_for(receiver, host, {"GPUEccUncorrectable"})[0]
        assert notification["receiver"] == receiver
        assert notification["commonLabels"]["action"] == "quarantine"
    assert sink.notifications("tickets", host) == []


def test_alerts_are_grouped_per_gpu(alertmanager, sink):
    host = "grouping"
    alertmanager.post_alerts([alert("GPUThermalWarning", host, "0"), alert("GPUThrottling", host, "0"),
                              alert("GPUMemoryPressure", host, "1")])
    sink.wait_for("tickets", host, {"GPUThermalWarning", "GPUThrottling", "GPUMemoryPressure"})
    groups = {}
    for notification in sink.notifications("tickets", host):
        gpu = notification["groupLabels"]["gpu"]
        groups.setdefault(gpu, set()).update(a["labels"]["alertname"] for a in notification["alerts"])
        assert set(notification["groupLabels"]) == {"cluster", "host", "gpu"}
    assert groups == {"0": {"GPUThermalWarning", "GPUThrottling"}, "1": {"GPUMemoryPressure"}}
    first = next(n for n in sink.notifications("tickets", host) if n["groupLabels"]["gpu"] == "0")
    assert len(first["alerts"]) == 2, "both alerts of GPU 0 arrive in one notification"
