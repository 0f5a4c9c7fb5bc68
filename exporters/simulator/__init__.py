"""The GPU simulator: deterministic GPU fleets serving the NVML exporter's exposition, with
named faults that drive the generated alerts (see exporters/README.md)."""
