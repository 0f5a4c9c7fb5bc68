"""The simulator imitating NVIDIA's dcgm-exporter: exactly the families its counters CSV enables, its
labels in its order (3.x `Hostname`, 4.x `hostname`), MIG and pod rows as the real captures in
tests/captures show them, and XID series only once there are XIDs."""

import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.simulator import cli
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import ExporterMode, LayoutError, dcgm_counters, from_flags, from_spec
from exporters.simulator.model import Physics
from exporters.simulator.runtime import Endpoint
from gpuobs import catalog
from gpuobs.gpus import GPU_MODELS

CAPTURES = Path(__file__).parent / "captures"
IDENTITY = ["gpu", "UUID", "pci_bus_id", "device", "modelName"]
MIG = ["GPU_I_PROFILE", "GPU_I_ID"]
DRIVER = catalog.DCGM_DRIVER_LABEL_FIELD
_LINE = re.compile(r"^(\w+)\{(.*)\} \S+$")
_LABEL = re.compile(r'(\w+)="(?:[^"\\]|\\.)*"')


def dcgm(version=4, counters="default") -> ExporterMode:
    return ExporterMode(catalog.DCGM_EXPORTER, version, dcgm_counters(counters))


def simulate(model="L40S", gpus=1, mig=(), exporter=None, pods=False, faults=(), seconds=10.0):
    """A one-host fleet run for `seconds`, faults (name, gpu, params) started at 5 s; the endpoint's body."""
    fleet = Fleet(from_flags(1, gpus, model, 0, mig_profiles=mig, exporter=exporter or dcgm(), pods=pods),
                  seed=7, epoch=1.7e9)
    fleet.advance_to(5)
    for name, gpu, params in faults:
        fleet.start_fault(name, None, gpu, params)
    fleet.advance_to(seconds)
    endpoint = Endpoint(fleet.hosts, 0)
    endpoint.render(1.7e9 + seconds)
    return endpoint.snapshot.body.decode()


def families(text: str) -> dict[str, list]:
    """Family name -> samples, as prometheus_client parses them (it keeps dcgm's counter names)."""
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def label_orders(text: str) -> dict[str, set[tuple[str, ...]]]:
    """Family name -> the label names of its lines, in the order they are written."""
    orders: dict = {}
    for line in text.splitlines():
        if match := _LINE.match(line):
            orders.setdefault(match.group(1), set()).add(tuple(_LABEL.findall(match.group(2))))
    return orders


def label_names(text: str) -> dict[str, set[str]]:
    return {name: {label for order in orders for label in order} for name, orders in label_orders(text).items()}


def test_default_counters_are_exactly_the_families_served_and_nothing_of_gpuobs():
    text = simulate("A100-SXM4-80GB", 2, faults=[("xid", 0, {"code": 13})])
    assert set(families(text)) == set(catalog.DCGM_DEFAULT_COUNTERS)
    assert "gpuobs_" not in text


@pytest.mark.parametrize("version, hostname", [(3, "Hostname"), (4, "hostname")])
def test_labels_follow_dcgm_exporters_template_order(version, hostname):
    text = simulate(exporter=dcgm(version))
    orders = label_orders(text)
    orders.pop("DCGM_FI_DEV_XID_ERRORS", None)  # 3.x: with err_code, err_msg (below)
    assert orders and all(o == {(*IDENTITY, hostname, DRIVER)} for o in orders.values())
    assert f'{hostname}="gpu-node-01"' in text and 'DCGM_FI_DRIVER_VERSION="550.54.15"' in text


def test_an_l40s_host_serves_the_families_and_labels_of_the_real_4x_capture():
    capture = (CAPTURES / "dcgm-exporter-4x-l40s-upcloud.prom").read_text()
    ours = simulate("L40S")
    assert set(families(ours)) == set(families(capture))
    # The capture predates dcgm-exporter's rename of Hostname to hostname (NVIDIA/dcgm-exporter#655).
    renamed = {name: {"hostname" if n == "Hostname" else n for n in names}
               for name, names in label_names(capture).items()}
    assert label_names(ours) == renamed
    assert label_names(simulate("L40S", exporter=dcgm(3))) == label_names(capture) | {
        "DCGM_FI_DEV_XID_ERRORS": {*IDENTITY, "Hostname", DRIVER, "err_code", "err_msg"}}


def test_help_and_type_lines_are_dcgm_exporters():
    capture = (CAPTURES / "dcgm-exporter-4x-l40s-upcloud.prom").read_text()
    ours = simulate("L40S")
    assert {line for line in ours.splitlines() if line.startswith("#")} == \
           {line for line in capture.splitlines() if line.startswith("#")}


def test_a_mig_gpu_serves_one_row_per_instance_as_the_a100_mig_capture():
    capture = (CAPTURES / "dcgm-exporter-3x-a100-mig-runai.prom").read_text()
    ours = simulate("A100-SXM4-40GB", mig=("1g.5gb", "1g.5gb", "2g.10gb"), exporter=dcgm(3), pods=True)
    theirs, mine = families(capture), families(ours)
    assert set(theirs) <= set(mine)
    # Fields the default CSV gained after the capture's early 3.x release.
    assert set(mine) - set(theirs) == {"DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
                                       "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES"}
    ours_labels, capture_labels = label_orders(ours), label_orders(capture)
    for name in theirs:
        # The capture's release did not label pci_bus_id yet, nor the XID's err_code and err_msg (3.3 does).
        assert {tuple(n for n in order if n not in ("pci_bus_id", "err_code", "err_msg"))
                for order in ours_labels[name]} == capture_labels[name]
        assert sorted(s.labels["GPU_I_ID"] for s in mine[name]) == ["1", "2", "3"], name
    temps = {s.value for s in mine["DCGM_FI_DEV_GPU_TEMP"]}
    assert len(temps) == 1, "a GPU-level field repeats the GPU's reading on every instance"
    assert "DCGM_FI_DEV_GPU_UTIL" not in mine


def test_pods_label_every_gpu_and_each_mig_instance_apart_yet_one_series_per_physical_gpu():
    text = simulate("A100-SXM4-80GB", gpus=2, mig=("3g.40gb", "4g.40gb"), pods=True)
    temps = families(text)["DCGM_FI_DEV_GPU_TEMP"]
    assert len(temps) == 4
    assert len({s.labels["pod"] for s in temps}) == 4, "each instance of a MIG GPU holds its own pod"
    assert {s.labels["namespace"] for s in temps} == {"ml"} and all(s.labels["container"] for s in temps)
    per_gpu = {frozenset((k, v) for k, v in s.labels.items() if k not in (*MIG, *catalog.WORKLOAD_LABELS))
               for s in temps}
    assert len(per_gpu) == 2
    whole = families(simulate("L40S", gpus=2, pods=True))["DCGM_FI_DEV_GPU_TEMP"]
    assert [s.labels["pod"] for s in whole] == ["train-gpu-node-01-gpu0", "train-gpu-node-01-gpu1"]


def test_pod_labels_follow_the_driver_version_sorted_with_the_xid_attributes_as_in_the_t4_capture():
    capture = (CAPTURES / "dcgm-exporter-3x-t4-pod-runai.prom").read_text()
    ours = simulate("T4", exporter=dcgm(3), pods=True)
    assert label_orders(ours)["DCGM_FI_DEV_XID_ERRORS"] == label_orders(capture)["DCGM_FI_DEV_XID_ERRORS"]
    assert label_orders(ours)["DCGM_FI_DEV_GPU_TEMP"] == label_orders(capture)["DCGM_FI_DEV_GPU_TEMP"]


def test_4x_serves_the_xid_field_only_after_an_xid_3x_from_the_start():
    assert "DCGM_FI_DEV_XID_ERRORS" not in families(simulate())
    (xid,) = families(simulate(faults=[("xid", 0, {"code": 31})]))["DCGM_FI_DEV_XID_ERRORS"]
    assert (xid.value, xid.labels["err_code"], xid.labels["err_msg"]) == (31, "31", "GPU memory page fault")
    (healthy,) = families(simulate(exporter=dcgm(3)))["DCGM_FI_DEV_XID_ERRORS"]
    assert (healthy.value, healthy.labels["err_code"], healthy.labels["err_msg"]) == (0, "0", "No Error")


def test_the_xid_count_counts_each_code_within_its_five_minute_window():
    xids = [("xid", 0, {"code": 13}), ("xid-79", 1, {"lost_after_s": 600})]
    exporter = dcgm(4, "gpuobs")
    before = families(simulate("H100-SXM5-80GB", 2, exporter=exporter))["DCGM_EXP_XID_ERRORS_COUNT"]
    assert [(s.labels.get("xid"), s.value) for s in before] == [(None, 0), (None, 0)], "a zero while none"
    during = families(simulate("H100-SXM5-80GB", 2, exporter=exporter, faults=xids, seconds=300))
    assert {(s.labels["gpu"], s.labels["xid"], s.labels["window_size_in_ms"], s.value)
            for s in during["DCGM_EXP_XID_ERRORS_COUNT"]} == {("0", "13", "300000", 1), ("1", "79", "300000", 1)}
    after = families(simulate("H100-SXM5-80GB", 2, exporter=exporter, faults=xids, seconds=306))
    assert all("xid" not in s.labels and s.value == 0 for s in after["DCGM_EXP_XID_ERRORS_COUNT"])
    assert {s.value for s in after["DCGM_FI_DEV_XID_ERRORS"]} == {13, 79}, "the last-XID field keeps its value"


def test_the_gpuobs_counters_add_the_fields_the_alerts_read_and_faults_move_them():
    text = simulate("H100-SXM5-80GB", exporter=dcgm(4, "gpuobs"), faults=[("xid-48", 0, {})])
    served = families(text)
    wanted = {f for f in dcgm_counters("gpuobs")
              if f not in ("DCGM_FI_DEV_RETIRED_PENDING", "DCGM_FI_DEV_GPU_MAX_OP_TEMP", "DCGM_FI_DEV_MEM_MAX_OP_TEMP")}
    assert set(served) == wanted, "H100 remaps rows and reports its T.Limit margin instead of max-op temperatures"
    assert served["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"][0].value == 1
    assert served["DCGM_FI_DEV_ROW_REMAP_PENDING"][0].value == 1
    (margin,) = served["DCGM_FI_DEV_GPU_TEMP_LIMIT"]
    (temp,) = served["DCGM_FI_DEV_GPU_TEMP"]
    t_limit = Physics.of(GPU_MODELS["H100-SXM5-80GB"]).max_op_c
    assert margin.value > 0 and abs(temp.value + margin.value - t_limit) <= 1, "the T.Limit margin in C"
    assert "gpuobs_" not in text


def test_faults_change_the_physics_under_dcgm_names():
    hot = families(simulate(faults=[("thermal-runaway", 0, {"rate_c_per_min": 600})], seconds=120))
    cool = families(simulate(seconds=120))
    assert hot["DCGM_FI_DEV_GPU_TEMP"][0].value > cool["DCGM_FI_DEV_GPU_TEMP"][0].value + 20


def _spec(tmp_path, exporter: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
clusters: [{{name: c1}}]
hosts:
  - {{name: own, cluster: c1, address: 10.0.0.1, gpus: {{model: L4, count: 1}}}}
  - {{name: k8s, cluster: c1, address: 10.0.0.2, exporter_port: 9401, exporter: {exporter},
     gpus: {{model: L40S, count: 2}}}}
""")
    return spec


def test_a_spec_gives_each_host_its_exporter(tmp_path):
    own, k8s = from_spec(_spec(tmp_path, "{kind: dcgm-exporter, version: 3, counters: default}"), base_port=0)
    assert own.exporter == ExporterMode()
    assert k8s.exporter == dcgm(3)
    with pytest.raises(LayoutError, match="not nvidia_gpu_exporter"):
        from_spec(_spec(tmp_path, "{kind: nvidia_gpu_exporter}"))


def _serve(*args: str) -> dict[str, str]:
    """The simulator started in-process with these flags: each host's body, by host name."""
    simulation, _ = cli.build(cli.build_parser().parse_args(["--base-port", "0", "--control-address", "", *args]))
    try:
        bodies = {}
        for endpoint in simulation.endpoints:
            with urllib.request.urlopen(f"{endpoint.server.url}/metrics", timeout=10) as response:
                bodies[endpoint.hosts[0].name] = response.read().decode()
        return bodies
    finally:
        simulation.stop()


def test_the_program_serves_dcgm_exporter_from_flags_and_from_a_spec(tmp_path):
    (body,) = _serve("--exporter", "dcgm-exporter", "--dcgm-version", "3", "--model", "L40S", "--gpus", "1",
                     "--pods").values()
    assert 'Hostname="gpu-node-01"' in body and 'pod="train-gpu-node-01-gpu0"' in body and "gpuobs_" not in body
    bodies = _serve("--spec", str(_spec(tmp_path, "{kind: dcgm-exporter, counters: gpuobs}")), "--pods")
    assert "gpuobs_gpu_up" in bodies["own"] and 'pod="train-own-gpu0"' in bodies["own"]
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in bodies["k8s"] and 'hostname="k8s"' in bodies["k8s"]
    assert "gpuobs_" not in bodies["k8s"] and 'pod="train-k8s-gpu1"' in bodies["k8s"]


@pytest.mark.parametrize("args, message", [
    (["--dcgm-version", "3"], "need --exporter dcgm-exporter"),
])
def test_dcgm_flags_without_dcgm_exporter_are_refused(args, message):
    with pytest.raises(LayoutError, match=message):
        cli.build(cli.build_parser().parse_args(["--base-port", "0", "--control-address", "", *args]))


def test_a_spec_decides_the_exporter_so_the_flags_are_refused_with_it(tmp_path):
    spec = _spec(tmp_path, "{kind: dcgm-exporter}")
    with pytest.raises(LayoutError, match="comes from the spec"):
        cli.build(cli.build_parser().parse_args(["--spec", str(spec), "--exporter", "dcgm-exporter"]))
