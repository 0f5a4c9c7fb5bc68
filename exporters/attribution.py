"""Workload labels on GPU and MIG instance series (opt-in): the Kubernetes pod holding a device
(pods.py), the batch job holding it (hpc_jobs.py), or both. Both are read again at the start of every
collection cycle; what they say goes on every series of the GPU or instance, as dcgm-exporter puts
its pod and job labels."""

from __future__ import annotations

import os
import stat

from .collector import ErrorCounts
from .hpc_jobs import JobMapping
from .pods import DEFAULT_SOCKET, PodMapping

# Seconds a List may take: the kubelet answers in milliseconds, and one that hangs delays the cycle by
# this much at most (the snapshot scrapes get meanwhile is the previous one).
KUBELET_TIMEOUT = 2.0
POD_RESOURCES_FLAG = "--kubernetes-pod-resources (GPUOBS_KUBERNETES_POD_RESOURCES)"
HPC_FLAG = "--hpc-job-mapping-dir (GPUOBS_HPC_JOB_MAPPING_DIR)"

Labels = tuple[tuple[str, str], ...]


class Attribution:
    def __init__(self, pods: PodMapping | None = None, jobs: JobMapping | None = None):
        self.pods = pods
        self.jobs = jobs

    @property
    def needs_mig_uuid(self) -> bool:
        """The kubelet names MIG devices by their UUID, which NVML has to be asked for."""
        return self.pods is not None

    def refresh(self, errors: ErrorCounts) -> None:
        for source in (self.pods, self.jobs):
            if source is not None:
                source.refresh(errors)

    def gpu(self, index: int, uuid: str | None) -> Labels:
        pods = self.pods.gpu(index, uuid) if self.pods else ()
        return pods + (self.jobs.gpu(index) if self.jobs else ())

    def instance(self, index: int, gi_id: int, mig_uuid: str | None) -> Labels:
        pods = self.pods.instance(index, gi_id, mig_uuid) if self.pods else ()
        return pods + (self.jobs.instance(index, gi_id) if self.jobs else ())


def open_attribution(pod_resources: str | None, hpc_job_dir: str | None) -> Attribution | None:
    """The attribution the flags ask for, None for none; ValueError with a message for the user when
    the socket or the directory is not there, or grpcio is not installed."""
    pods = _pods(pod_resources) if pod_resources else None
    jobs = _jobs(hpc_job_dir) if hpc_job_dir else None
    return Attribution(pods, jobs) if pods or jobs else None


def _pods(path: str) -> PodMapping:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError(f"{POD_RESOURCES_FLAG}: no kubelet pod-resources socket at {path}: mount the node's "
                         f"{os.path.dirname(DEFAULT_SOCKET)} into the exporter's container, or give the "
                         "socket's path (--kubernetes-pod-resources=SOCKET)") from None
    except OSError as exc:
        raise ValueError(f"{POD_RESOURCES_FLAG}: cannot reach {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"{POD_RESOURCES_FLAG}: {path} is not a unix socket: give the kubelet's pod-resources "
                         f"socket (default {DEFAULT_SOCKET})")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ValueError(f"{POD_RESOURCES_FLAG}: user {os.getuid()} may not connect to {path} (it takes read and "
                         "write access): the kubelet's socket is root's, so run the exporter as root")
    try:
        from .kubelet import PodResourcesClient, messages

        messages()
        return PodMapping(PodResourcesClient(path, KUBELET_TIMEOUT))
    except ImportError as exc:
        raise ValueError(f"{POD_RESOURCES_FLAG} needs the grpcio and protobuf packages ({exc.name} is missing): "
                         "pip install 'gpuobs[exporter]'") from None


def _jobs(path: str) -> JobMapping:
    if not os.path.isdir(path):
        raise ValueError(f"{HPC_FLAG}: {path} is not a directory: create it, or give the directory the job "
                         "scheduler's prolog writes a file per GPU into")
    return JobMapping(path)
