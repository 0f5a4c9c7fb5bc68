"""The simulator's pods and jobs (--pods, --hpc-jobs, --workload-gpus) label what gpuobs-exporter's
attribution labels, the same way: held GPUs, each MIG instance apart, a MIG GPU's own series bare."""

import dataclasses

import pytest
from exposition_helpers import find
from kubelet_fake import FakeKubelet, FakePod
from nvml_fake import FakeGpu, FakeMig
from nvml_helpers import Exporter

from exporters.attribution import Attribution
from exporters.hpc_jobs import JobMapping
from exporters.kubelet import PodResourcesClient
from exporters.pods import PodMapping
from exporters.simulator import cli
from exporters.simulator.fleet import Fleet
from exporters.simulator.layout import LayoutError, from_flags
from exporters.simulator.runtime import Endpoint

WORKLOAD = ("pod", "namespace", "container", "hpc_job")


def _simulate(**workload) -> bytes:
    """One gpuobs-exporter host of three A100s, GPU 1 in MIG mode, with `workload` of HostLayout."""
    (layout,) = from_flags(1, 3, "A100-SXM4-80GB", 0)
    layout = dataclasses.replace(layout, mig_profiles=("3g.40gb", "4g.40gb"), mig_gpus=(1,), **workload)
    fleet = Fleet([layout], seed=7, epoch=1.7e9)
    fleet.advance_to(2)
    endpoint = Endpoint(fleet.hosts, 0)
    endpoint.render(1.7e9 + 2)
    return endpoint.snapshot.body


def _workload(sample) -> dict:
    return {k: v for k, v in sample.labels.items() if k in WORKLOAD}


def test_the_held_gpus_and_each_mig_instance_carry_their_pod_and_job():
    body = _simulate(pods=True, hpc_jobs=True, workload_gpus=2)
    (gpu0,) = find(body, "gpu_temp", gpu=0)
    assert _workload(gpu0) == {"pod": "train-gpu-node-01-gpu0", "namespace": "ml", "container": "trainer",
                               "hpc_job": "1000"}
    instances = {s.labels["GPU_I_ID"]: _workload(s) for s in find(body, "fb_used", gpu=1)}
    assert {gi: (w["pod"], w["hpc_job"]) for gi, w in instances.items()} == \
           {"1": ("train-gpu-node-01-gpu1-mig1", "1011"), "2": ("train-gpu-node-01-gpu1-mig2", "1012")}
    assert [_workload(s) for s in find(body, "gpu_temp", gpu=1)] == [{}], "a MIG GPU's own series: no one's"
    assert all(not _workload(s) for s in find(body, "gpu_up", gpu=2)), "GPU 2 is not among --workload-gpus 2"
    assert _workload(find(_simulate(hpc_jobs=True), "gpu_temp", gpu=2)[0]) == {"hpc_job": "1020"}


def test_every_fourth_gpu_held_is_an_idle_notebook_the_others_work():
    (layout,) = from_flags(1, 8, "A100-SXM4-80GB", 0)
    fleet = Fleet([dataclasses.replace(layout, pods=True, hpc_jobs=True, workload_gpus=7)], seed=3, epoch=1.7e9)
    fleet.advance_to(600)
    endpoint = Endpoint(fleet.hosts, 0)
    endpoint.render(1.7e9 + 600)
    body = endpoint.snapshot.body
    (idle,) = find(body, "gpu_util", gpu=3)
    assert _workload(idle) == {"pod": "notebook-gpu-node-01-gpu3", "namespace": "research", "container": "notebook",
                               "hpc_job": "1030"}
    assert idle.value < 3
    assert _workload(find(body, "gpu_util", gpu=7)[0]) == {}, "GPU 7 is not among --workload-gpus 7"
    busy = [find(body, "gpu_util", gpu=i)[0] for i in (0, 1, 2, 4, 5, 6)]
    assert all(_workload(s)["namespace"] == "ml" for s in busy)
    assert sum(s.value for s in busy) / len(busy) > 20


def test_the_simulator_labels_a_workload_as_the_exporter_does(nvml, tmp_path):
    fake = nvml([FakeGpu(0), FakeGpu(1, mig=[FakeMig(1, "3g.40gb")])])
    kubelet = FakeKubelet(tmp_path / "kubelet.sock").start()
    kubelet.pods = [FakePod("a", devices={"nvidia.com/gpu": [fake.gpus[0].uuid]}),
                    FakePod("b", devices={"nvidia.com/mig-3g.40gb": [fake.gpus[1].mig_uuid(1)]})]
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("1\n")
    (jobs / "1.1").write_text("2\n")
    try:
        pods = PodMapping(PodResourcesClient(kubelet.socket_path, 2.0))
        exporter = Exporter(attribution=Attribution(pods, JobMapping(str(jobs)))).cycle()
    finally:
        kubelet.stop()
    simulator = _simulate(pods=True, hpc_jobs=True)
    for key, labels in (("gpu_temp", {"gpu": 0}), ("gpu_up", {"gpu": 0}), ("fb_used", {"gpu": 1, "GPU_I_ID": 1}),
                        ("gpu_temp", {"gpu": 1})):
        (ours,), (theirs,) = find(exporter, key, **labels), find(simulator, key, **labels)
        assert list(ours.labels) == list(theirs.labels), (key, labels)


@pytest.mark.parametrize(("args", "message"), [
    (["--workload-gpus", "2"], "it needs --pods or --hpc-jobs"),
    (["--pods", "--workload-gpus", "-1"], "must be 0 or more, not -1"),
])
def test_workload_gpus_without_a_workload_or_below_0_are_refused(args, message):
    with pytest.raises(LayoutError, match=message):
        cli.build(cli.build_parser().parse_args(["--base-port", "0", "--control-address", "", *args]))
