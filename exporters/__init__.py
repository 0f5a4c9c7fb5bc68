"""gpuobs exporters: the NVML exporter and the GPU simulator, serving the metric catalog's names.

Both programs share one exposition (exposition.py), one HTTP server (server.py) and one
background publishing loop (collector.py), so whatever works against one works against the other.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("gpuobs")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "unknown"
