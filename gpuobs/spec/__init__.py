"""The fleet spec: its classes (schema), loading with precise errors (load), cross-checks."""

from gpuobs.spec.load import load_spec
from gpuobs.spec.schema import (
                                AlertOverride,
                                Cluster,
                                Fleet,
                                Gpus,
                                Host,
                                Links,
                                MigLayout,
                                Prometheus,
                                Team,
                                Thresholds,
                                json_schema,
)

__all__ = ["AlertOverride", "Cluster", "Fleet", "Gpus", "Host", "Links", "MigLayout", "Prometheus", "Team",
           "Thresholds", "json_schema", "load_spec"]
