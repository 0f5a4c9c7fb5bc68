"""Kubernetes attribution: the exporter asks a fake kubelet (a real gRPC server on a unix socket,
tests/kubelet_fake.py) which pod holds each GPU and MIG device, and labels their series."""

import pytest
from exposition_helpers import find, value
from kubelet_fake import FakeKubelet, FakePod
from nvml_fake import FakeGpu, FakeMig
from nvml_helpers import Exporter

from conftest import ROOT
from exporters.attribution import Attribution
from exporters.kubelet import PodResourcesClient
from exporters.pods import FIELD, PodMapping, device_key

POD = ("pod", "namespace", "container")


@pytest.fixture
def kubelet(tmp_path):
    fake = FakeKubelet(tmp_path / "kubelet.sock").start()
    yield fake
    fake.stop()


def _exporter(kubelet, timeout: float = 2.0) -> Exporter:
    return Exporter(attribution=Attribution(PodMapping(PodResourcesClient(kubelet.socket_path, timeout))))


def _pod(sample) -> tuple | None:
    labels = tuple(sample.labels.get(name) for name in POD)
    return None if labels == (None, None, None) else labels


def _pods(body, key, **labels) -> set:
    return {_pod(s) for s in find(body, key, **labels)}


def test_each_gpu_and_mig_instance_carries_the_pod_holding_it(nvml, kubelet):
    fake = nvml([FakeGpu(0), FakeGpu(1), FakeGpu(2, mig=[FakeMig(1, "3g.40gb"), FakeMig(5, "1g.10gb")]),
                 FakeGpu(3), FakeGpu(4)])
    gpu0, gpu1, mig, gpu3, gpu4 = fake.gpus
    kubelet.pods = [
        FakePod("train-0", devices={"nvidia.com/gpu": [gpu0.uuid]}),
        # Time-slicing: two pods share GPU 1; the series name one of them, the same one every time.
        FakePod("share-b", "team-b", "worker", devices={"nvidia.com/gpu": [f"{gpu1.uuid}::1"]}),
        FakePod("share-a", "team-b", "worker", devices={"nvidia.com/gpu.shared": [f"{gpu1.uuid}::0"]}),
        FakePod("infer", "serving", "server", devices={"nvidia.com/mig-1g.10gb": [mig.mig_uuid(5)]}),
        FakePod("fpga", devices={"example.com/fpga": [gpu3.uuid]}),  # not a GPU resource: no label
        FakePod("gke", "batch", "job", devices={"nvidia.com/gpu": ["nvidia4"]}),
    ]
    body = _exporter(kubelet).cycle()
    assert _pods(body, "gpu_temp", gpu=0) == {("train-0", "ml", "trainer")}
    assert _pods(body, "gpu_up", gpu=0) == {("train-0", "ml", "trainer")}, "every series of the GPU"
    assert _pods(body, "gpu_temp", gpu=1) == {("share-a", "team-b", "worker")}
    assert _pods(body, "fb_used", gpu=2, GPU_I_ID=5) == {("infer", "serving", "server")}
    assert _pods(body, "fb_used", gpu=2, GPU_I_ID=1) == {None}
    assert _pods(body, "gpu_temp", gpu=2) == {None}, "a MIG GPU's own series belong to no single pod"
    assert _pods(body, "gpu_temp", gpu=3) == {None}
    assert _pods(body, "gpu_temp", gpu=4) == {("gke", "batch", "job")}
    (series,) = find(body, "gpu_temp", gpu=0)
    assert list(series.labels)[-3:] == list(POD)


def test_labels_follow_the_pods_from_one_cycle_to_the_next(nvml, kubelet):
    fake = nvml([FakeGpu(0), FakeGpu(1, mig=[FakeMig(3, "3g.40gb")])])
    exporter = _exporter(kubelet)
    assert _pods(exporter.cycle(), "gpu_temp", gpu=0) == {None}
    kubelet.pods = [FakePod("a", devices={"nvidia.com/gpu": [fake.gpus[0].uuid]}),
                    FakePod("b", devices={"nvidia.com/mig-3g.40gb": [fake.gpus[1].mig_uuid(3)]})]
    body = exporter.cycle()
    assert _pods(body, "gpu_temp", gpu=0) == {("a", "ml", "trainer")}
    assert _pods(body, "fb_used", gpu=1, GPU_I_ID=3) == {("b", "ml", "trainer")}
    kubelet.pods = [FakePod("c", devices={"nvidia.com/gpu": [fake.gpus[0].uuid]})]
    body = exporter.cycle()
    assert _pods(body, "gpu_temp", gpu=0) == {("c", "ml", "trainer")}, "one series: the old pod's is gone"
    assert _pods(body, "fb_used", gpu=1, GPU_I_ID=3) == {None}
    assert exporter.errors_of("", FIELD) == 0


def test_a_kubelet_that_stops_answering_never_stops_gpu_metrics(nvml, kubelet):
    fake = nvml([FakeGpu(0), FakeGpu(1)])
    kubelet.pods = [FakePod("a", devices={"nvidia.com/gpu": [fake.gpus[0].uuid]})]
    exporter = _exporter(kubelet, timeout=0.3)
    assert _pods(exporter.cycle(), "gpu_temp", gpu=0) == {("a", "ml", "trainer")}
    kubelet.delay = 1.0  # slower than the timeout
    body = exporter.cycle()
    assert value(body, "gpu_temp", gpu=1) == 45 and value(body, "exporter_last_success") > 0
    assert value(body, "exporter_collection_errors", gpu="", field=FIELD) == 1
    assert _pods(body, "gpu_temp", gpu=0) == {("a", "ml", "trainer")}, "the last answer stands meanwhile"
    kubelet.stop()  # gone: its socket too
    body = exporter.cycle()
    assert value(body, "gpu_temp", gpu=0) == 45 and value(body, "gpu_up", gpu=1) == 1
    assert value(body, "exporter_collection_errors", gpu="", field=FIELD) == 2
    kubelet.delay = 0
    kubelet.pods = [FakePod("b", devices={"nvidia.com/gpu": [fake.gpus[1].uuid]})]
    kubelet.start()  # back, on the same socket
    body = exporter.cycle()
    assert _pods(body, "gpu_temp", gpu=0) == {None} and _pods(body, "gpu_temp", gpu=1) == {("b", "ml", "trainer")}
    assert value(body, "exporter_collection_errors", gpu="", field=FIELD) == 2


@pytest.mark.parametrize(("device_id", "key"), [
    ("GPU-8e1c2d3f-0000-1111-2222-333344445555", ("uuid", "GPU-8e1c2d3f-0000-1111-2222-333344445555")),
    ("GPU-8e1c2d3f-0000-1111-2222-333344445555::3", ("uuid", "GPU-8e1c2d3f-0000-1111-2222-333344445555")),
    ("MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b55::7", ("uuid", "MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b55")),
    ("MIG-GPU-8e1c2d3f-0000-1111-2222-333344445555/1/0", ("uuid", "MIG-GPU-8e1c2d3f-0000-1111-2222-333344445555/1/0")),
    ("nvidia3", ("index", 3, None)),
    ("nvidia3/vgpu2", ("index", 3, None)),
    ("nvidia0/gi5", ("index", 0, 5)),
    ("nvidia0/gi5/vgpu1", ("index", 0, 5)),
])
def test_device_ids_of_every_device_plugin_name_their_device(device_id, key):
    """NVIDIA's device plugin (UUIDs, `::N` when time-sliced, MIG UUIDs of both formats) and GKE's."""
    assert device_key(device_id) == key


def test_the_vendored_descriptor_is_the_compiled_proto(tmp_path):
    """exporters/kubelet/api.binpb is what its api.proto compiles to (the command is in api.proto)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    from google.protobuf import descriptor_pb2

    folder = ROOT / "exporters" / "kubelet"
    out = tmp_path / "api.binpb"
    assert protoc.main(["protoc", f"-I{folder}", f"--descriptor_set_out={out}", "api.proto"]) == 0
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    assert descriptor_pb2.FileDescriptorSet.FromString((folder / "api.binpb").read_bytes()) == compiled
