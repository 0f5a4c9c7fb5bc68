"""A kubelet's pod-resources API for tests: a real gRPC server on a unix socket, speaking the
vendored proto (exporters/kubelet/api.proto), answering List with the pods it is given."""

from __future__ import annotations

import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from exporters import kubelet


@dataclass
class FakePod:
    name: str
    namespace: str = "ml"
    container: str = "trainer"
    devices: dict[str, list[str]] = field(default_factory=dict)  # resource name -> device ids


class FakeKubelet:
    """Serves from start() until stop(); `pods` and `delay` (seconds before each answer) may change
    while it runs."""

    def __init__(self, socket_path):
        self.socket_path = str(socket_path)
        self.pods: list[FakePod] = []
        self.delay = 0.0
        self.calls = 0
        self._server = None

    def start(self) -> FakeKubelet:
        classes = kubelet.messages()
        handler = grpc.unary_unary_rpc_method_handler(
            self._list, request_deserializer=classes["ListPodResourcesRequest"].FromString,
            response_serializer=classes["ListPodResourcesResponse"].SerializeToString)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(kubelet.SERVICE,
                                                                                     {"List": handler}),))
        self._server.add_insecure_port(kubelet.target(self.socket_path))
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(None).wait()

    def _list(self, request, context):
        self.calls += 1
        time.sleep(self.delay)
        response = kubelet.messages()["ListPodResourcesResponse"]()
        for pod in self.pods:
            container = response.pod_resources.add(name=pod.name, namespace=pod.namespace).containers.add(
                name=pod.container)
            for resource, ids in pod.devices.items():
                container.devices.add(resource_name=resource, device_ids=ids)
        return response
