"""The fleet spec: its classes (schema), loading with precise errors (load), cross-checks."""

from gpuobs.spec.load import load_spec
from gpuobs.spec.schema import (
                                AlertOverride,
                                Cluster,
                                ClusterEfficiency,
                                ClusterPrometheus,
                                Efficiency,
                                Exporter,
                                Fleet,
                                GlobalTier,
                                GpuModelSpec,
                                Gpus,
                                Host,
                                IdleAllocation,
                                Kubernetes,
                                KubernetesAlertmanager,
                                KubernetesExporter,
                                Links,
                                MigLayout,
                                Prometheus,
                                RemoteWrite,
                                RemoteWriteQueue,
                                ResourceAmounts,
                                Resources,
                                SecretKey,
                                Team,
                                Thresholds,
                                Toleration,
                                json_schema,
)

__all__ = ["AlertOverride", "Cluster", "ClusterEfficiency", "ClusterPrometheus", "Efficiency", "Exporter", "Fleet",
           "GlobalTier", "GpuModelSpec", "Gpus", "Host", "IdleAllocation", "Kubernetes",
           "KubernetesAlertmanager", "KubernetesExporter", "Links", "MigLayout", "Prometheus",
           "RemoteWrite", "RemoteWriteQueue", "ResourceAmounts", "Resources", "SecretKey", "Team",
           "Thresholds", "Toleration", "json_schema", "load_spec"]
