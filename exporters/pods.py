"""Which Kubernetes pod holds each GPU and MIG device, as `pod`, `namespace` and `container`
labels: dcgm-exporter's Kubernetes mapping, from the kubelet's pod-resources API.

Device ids are those the NVIDIA device plugin hands the kubelet: a GPU's UUID (`GPU-...`), a MIG
device's (`MIG-...`), either with a `::N` suffix when the GPU is shared by time-slicing, or GKE's
`nvidia0` and `nvidia0/gi3` (with `/vgpuN` when shared). A device several containers share names
one of them, the first by namespace, pod and container, as dcgm-exporter names one without
--kubernetes-virtual-gpus: every series stays one per GPU.

While the kubelet does not answer, the last answer stands: the kubelet admits and removes the pods
holding devices, so their allocation cannot change while it is down (a restart, an upgrade), and the
series keep their labels instead of losing and regaining them. Each failed refresh is counted.
"""

from __future__ import annotations

import logging
import re

from .collector import ErrorCounts

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
FIELD = "kubernetes_pod_resources"  # in gpuobs_exporter_collection_errors_total
# nvidia.com/gpu, its time-sliced rename nvidia.com/gpu.shared, and the MIG strategy's nvidia.com/mig-<profile>.
_RESOURCE = re.compile(r"^nvidia\.com/(gpu|gpu\.shared|mig-.+)$")
_GKE = re.compile(r"^nvidia(\d+)(?:/gi(\d+))?(?:/vgpu\d+)?$")

Labels = tuple[tuple[str, str], ...]


def device_key(device_id: str) -> tuple:
    """("uuid", UUID) or ("index", GPU index, GPU instance id or None) for a device plugin's id."""
    found = _GKE.match(device_id)
    if found:
        return "index", int(found[1]), None if found[2] is None else int(found[2])
    return "uuid", device_id.partition("::")[0]


def holders(response) -> dict[tuple, Labels]:
    """Device key -> the labels of the container holding it, from a ListPodResourcesResponse."""
    found: dict[tuple, Labels] = {}
    for pod in response.pod_resources:
        for container in pod.containers:
            labels = (("pod", pod.name), ("namespace", pod.namespace), ("container", container.name))
            for devices in container.devices:
                if not _RESOURCE.match(devices.resource_name):
                    continue
                for device_id in devices.device_ids:
                    key = device_key(device_id)
                    if key not in found or _order(labels) < _order(found[key]):
                        found[key] = labels
    return found


def _order(labels: Labels) -> tuple[str, str, str]:
    pod, namespace, container = (value for _, value in labels)
    return namespace, pod, container


class PodMapping:
    """The latest mapping the kubelet gave; `client` is a kubelet.PodResourcesClient."""

    def __init__(self, client):
        self._client = client
        self._holders: dict[tuple, Labels] = {}
        self._failing = False

    def refresh(self, errors: ErrorCounts) -> None:
        try:
            response = self._client.list()
        except Exception as exc:  # the kubelet down, slow or odd: GPU metrics go on with the last mapping
            errors.count(None, FIELD)
            if not self._failing:
                log.warning("kubelet pod-resources at %s: %s; keeping the last mapping until it answers",
                            self._client.socket_path, _describe(exc))
            self._failing = True
            return
        if self._failing:
            log.info("kubelet pod-resources at %s answers again", self._client.socket_path)
        self._failing = False
        self._holders = holders(response)

    def gpu(self, index: int, uuid: str | None) -> Labels:
        return self._holders.get(("uuid", uuid)) or self._holders.get(("index", index, None), ())

    def instance(self, index: int, gi_id: int, mig_uuid: str | None) -> Labels:
        return self._holders.get(("uuid", mig_uuid)) or self._holders.get(("index", index, gi_id), ())


def _describe(exc: BaseException) -> str:
    """A gRPC error as its status and details (`UNAVAILABLE: failed to connect ...`), else repr."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return repr(exc)
