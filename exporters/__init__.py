"""gpuobs exporters: the NVML exporter and the GPU simulator, serving the metric catalog's names.

Both programs share one exposition (exposition.py), one HTTP server (server.py) and one
background publishing loop (collector.py), so whatever works against one works against the other.

Installed, this folder is the package gpuobs_exporters (pyproject.toml): `exporters` is a name other
distributions use. Its modules import each other relatively, so the same code runs from the source
tree as `exporters` (`python -m exporters.simulator`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("gpuobs")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "unknown"
