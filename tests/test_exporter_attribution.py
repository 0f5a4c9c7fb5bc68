"""Attribution as the program offers it: the HPC job mapping directory, the flags and their
environment variables, what stops the exporter at start, and all of it served over HTTP."""

import os
import socket
import sys

import pytest
from exposition_helpers import find, get, value
from kubelet_fake import FakeKubelet, FakePod
from nvml_fake import MIB, FakeGpu, FakeMig, FakeProcess
from nvml_helpers import Exporter

from exporters import nvml_exporter
from exporters.attribution import Attribution
from exporters.hpc_jobs import FIELD, JobMapping
from exporters.pods import DEFAULT_SOCKET


def _jobs(body, key, **labels) -> set:
    return {s.labels.get("hpc_job") for s in find(body, key, **labels)}


def test_job_files_label_their_gpu_and_mig_instance_and_are_read_every_cycle(nvml, tmp_path):
    nvml([FakeGpu(0), FakeGpu(1), FakeGpu(2, mig=[FakeMig(1, "3g.40gb"), FakeMig(5, "1g.10gb")])])
    (tmp_path / "0").write_text("4242\n")
    (tmp_path / "2.5").write_text("\n  77  \n78\n")  # the first job id of several
    (tmp_path / "1").write_text("")  # emptied by the epilog
    (tmp_path / "notes.txt").write_text("9999\n")  # not named by a GPU
    (tmp_path / "3").mkdir()  # not a file
    exporter = Exporter(attribution=Attribution(jobs=JobMapping(str(tmp_path))))
    body = exporter.cycle()
    assert _jobs(body, "gpu_temp", gpu=0) == {"4242"} and _jobs(body, "gpu_up", gpu=0) == {"4242"}
    assert _jobs(body, "gpu_temp", gpu=1) == {None}
    assert _jobs(body, "fb_used", gpu=2, GPU_I_ID=5) == {"77"}
    assert _jobs(body, "fb_used", gpu=2, GPU_I_ID=1) == {None} and _jobs(body, "gpu_temp", gpu=2) == {None}

    (tmp_path / "0").write_text("5151\n")
    (tmp_path / "2.5").unlink()
    (tmp_path / "1").write_text("6000\n")
    body = exporter.cycle()
    assert _jobs(body, "gpu_temp", gpu=0) == {"5151"} and _jobs(body, "gpu_temp", gpu=1) == {"6000"}
    assert _jobs(body, "fb_used", gpu=2, GPU_I_ID=5) == {None}
    assert exporter.errors_of("", FIELD) == 0


def test_a_directory_that_goes_away_costs_the_labels_only(nvml, tmp_path):
    nvml([FakeGpu(0)])
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "0").write_text("1\n")
    exporter = Exporter(attribution=Attribution(jobs=JobMapping(str(folder))))
    assert _jobs(exporter.cycle(), "gpu_temp") == {"1"}
    (folder / "0").unlink()
    folder.rmdir()
    body = exporter.cycle()
    assert _jobs(body, "gpu_temp") == {None} and value(body, "gpu_temp") == 45
    assert value(body, "exporter_collection_errors", gpu="", field=FIELD) == 1
    folder.mkdir()
    (folder / "0").write_text("2\n")
    assert _jobs(exporter.cycle(), "gpu_temp") == {"2"}


def _args(*extra):
    return nvml_exporter.build_parser().parse_args(["--web.listen-address", "127.0.0.1:0", "--hostname", "n1",
                                                    *extra])


def test_pods_jobs_and_processes_are_served_together(nvml, tmp_path):
    fake = nvml([FakeGpu(0, processes=[FakeProcess(100, 1500, sm=25)])])
    kubelet = FakeKubelet(tmp_path / "kubelet.sock").start()
    kubelet.pods = [FakePod("train", "ml", "trainer", {"nvidia.com/gpu": [fake.gpus[0].uuid]})]
    (tmp_path / "0").write_text("31337\n")
    try:
        exporter = nvml_exporter.start(_args(f"--kubernetes-pod-resources={kubelet.socket_path}",
                                             "--hpc-job-mapping-dir", str(tmp_path), "--process-metrics"))
        try:
            with get(f"{exporter.server.url}/metrics") as response:
                body = response.read()
        finally:
            exporter.stop()
    finally:
        kubelet.stop()
    workload = {"pod": "train", "namespace": "ml", "container": "trainer", "hpc_job": "31337"}
    for key in ("gpu_temp", "gpu_up", "process_memory_used", "process_folded"):
        (series,) = find(body, key)
        assert workload.items() <= series.labels.items(), key
    assert value(body, "process_memory_used", pid=100) == 1500 * MIB


def test_the_environment_sets_every_attribution_flag(monkeypatch):
    defaults = nvml_exporter.build_parser().parse_args([])
    assert (defaults.pod_resources, defaults.hpc_job_dir, defaults.process_metrics, defaults.process_cap) == \
           (None, None, False, "10")
    assert nvml_exporter.build_parser().parse_args(["--kubernetes-pod-resources"]).pod_resources == DEFAULT_SOCKET
    monkeypatch.setenv("GPUOBS_KUBERNETES_POD_RESOURCES", "1")
    monkeypatch.setenv("GPUOBS_HPC_JOB_MAPPING_DIR", "/run/jobs")
    monkeypatch.setenv("GPUOBS_PROCESS_METRICS", "true")
    monkeypatch.setenv("GPUOBS_PROCESS_METRICS_MAX_PER_GPU", "3")
    args = nvml_exporter.build_parser().parse_args([])
    assert (args.pod_resources, args.hpc_job_dir, args.process_metrics, args.process_cap) == \
           (DEFAULT_SOCKET, "/run/jobs", True, "3")
    monkeypatch.setenv("GPUOBS_KUBERNETES_POD_RESOURCES", "/run/kubelet.sock")
    assert nvml_exporter.build_parser().parse_args([]).pod_resources == "/run/kubelet.sock"
    monkeypatch.setenv("GPUOBS_KUBERNETES_POD_RESOURCES", "0")
    assert nvml_exporter.build_parser().parse_args([]).pod_resources is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--kubernetes-pod-resources={tmp}/missing.sock"],
     "--kubernetes-pod-resources (GPUOBS_KUBERNETES_POD_RESOURCES): no kubelet pod-resources socket at "
     "{tmp}/missing.sock: mount the node's /var/lib/kubelet/pod-resources into the exporter's container"),
    (["--kubernetes-pod-resources={tmp}/file"], "{tmp}/file is not a unix socket"),
    (["--hpc-job-mapping-dir", "{tmp}/missing"],
     "--hpc-job-mapping-dir (GPUOBS_HPC_JOB_MAPPING_DIR): {tmp}/missing is not a directory"),
    (["--hpc-job-mapping-dir", "{tmp}/file"], "{tmp}/file is not a directory"),
    (["--process-metrics", "--process-metrics.max-per-gpu", "0"],
     "--process-metrics.max-per-gpu (GPUOBS_PROCESS_METRICS_MAX_PER_GPU) must be a whole number from 1 to 1000"),
])
def test_an_attribution_source_that_is_not_there_exits_1_with_a_message(nvml, capsys, tmp_path, argv, message):
    nvml([FakeGpu(0)])
    (tmp_path / "file").write_text("")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0", *argv]) == 1
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1


def test_a_socket_this_user_may_not_connect_to_exits_1_with_a_message(nvml, capsys, monkeypatch, tmp_path):
    nvml([FakeGpu(0)])
    path = str(tmp_path / "kubelet.sock")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != path and real_access(p, mode))  # as for a non-root user
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0", f"--kubernetes-pod-resources={path}"]) == 1
    assert f"may not connect to {path} (it takes read and write access): the kubelet's socket is root's, so run " \
           "the exporter as root" in capsys.readouterr().err


@pytest.mark.skipif(os.path.exists(DEFAULT_SOCKET), reason="this machine runs a kubelet")
def test_the_default_socket_from_the_environment_is_checked_too(nvml, capsys, monkeypatch):
    nvml([FakeGpu(0)])
    monkeypatch.setenv("GPUOBS_KUBERNETES_POD_RESOURCES", "true")
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0"]) == 1
    assert f"no kubelet pod-resources socket at {DEFAULT_SOCKET}" in capsys.readouterr().err


def test_grpc_is_needed_only_for_kubernetes_attribution(nvml, capsys, monkeypatch, tmp_path):
    nvml([FakeGpu(0)])
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if grpcio were not installed
    nvml_exporter.start(_args("--hpc-job-mapping-dir", str(tmp_path), "--process-metrics")).stop()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "kubelet.sock"))
        assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0",
                                   f"--kubernetes-pod-resources={tmp_path}/kubelet.sock"]) == 1
    assert ("--kubernetes-pod-resources (GPUOBS_KUBERNETES_POD_RESOURCES) needs the grpcio and protobuf packages "
            "(grpc is missing): pip install 'gpuobs[exporter]'") in capsys.readouterr().err
