"""gpuobs: observability configuration for GPU fleets, generated from one spec."""
