"""The kubelet's pod-resources API (gRPC on a unix socket): List, which says which devices each
container on the node holds.

The messages come from api.proto beside this module, through its compiled descriptor (api.binpb)
loaded into a pool of our own: no generated code, so any protobuf runtime from the floor in
pyproject.toml on reads it, and no name can clash with another library's in protobuf's default pool.
grpc and protobuf are imported only when this is used, so the exporter runs without them while
Kubernetes attribution is off.
"""

from __future__ import annotations

import functools
import os
from importlib import resources

SERVICE = "v1.PodResourcesLister"
LIST = f"/{SERVICE}/List"
# The kubelet's own client allows answers this large (a node's every pod, container and CPU id).
MAX_ANSWER_BYTES = 16 * 1024 * 1024


@functools.cache
def messages() -> dict:
    """The API's message classes by name (`ListPodResourcesResponse`, ...)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(resources.files(__name__).joinpath("api.binpb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    classes = {}
    for file in files.file:
        pool.AddSerializedFile(file.SerializeToString())
        for message in file.message_type:
            descriptor = pool.FindMessageTypeByName(f"{file.package}.{message.name}")
            classes[message.name] = message_factory.GetMessageClass(descriptor)
    return classes


def target(socket_path: str) -> str:
    """gRPC's address of a unix socket."""
    return f"unix://{os.path.abspath(socket_path)}"


class PodResourcesClient:
    """Asks the kubelet on `socket_path` for its pod resources, each time on a new connection: a
    kept channel that saw the kubelet restart would wait out gRPC's reconnect backoff (up to two
    minutes) before asking again, while a new one connects as soon as the socket answers."""

    def __init__(self, socket_path: str, timeout: float):
        import grpc  # ImportError here when grpcio is not installed

        self._grpc = grpc
        self.socket_path = socket_path
        self.timeout = timeout
        kinds = messages()
        self._request = kinds["ListPodResourcesRequest"]
        self._response = kinds["ListPodResourcesResponse"]

    def list(self):
        """The kubelet's ListPodResourcesResponse; grpc.RpcError when it does not answer in time."""
        options = [("grpc.max_receive_message_length", MAX_ANSWER_BYTES)]
        with self._grpc.insecure_channel(target(self.socket_path), options=options) as channel:
            call = channel.unary_unary(LIST, request_serializer=self._request.SerializeToString,
                                       response_deserializer=self._response.FromString)
            return call(self._request(), timeout=self.timeout)
