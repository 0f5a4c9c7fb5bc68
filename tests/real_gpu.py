"""What the real-GPU tests share: whether NVML finds a GPU, and gpuobs-exporter run as a child
process on this machine's GPUs, collecting every second on a free port of 127.0.0.1."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import ROOT


def gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, no library: no GPU to test
        return 0
    try:
        return pynvml.nvmlDeviceGetCount()
    except Exception:
        return 0
    finally:
        pynvml.nvmlShutdown()


# Every real-GPU module's pytestmark: skips at once where nvidia-smi is missing or NVML finds no GPU.
NEEDS_GPU = [
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not on PATH"),
    pytest.mark.skipif(shutil.which("nvidia-smi") is not None and gpu_count() == 0, reason="NVML finds no GPU"),
]

SERVING = re.compile(r"serving (\d+) GPUs on (http://\S+)/metrics")


class Exporter:
    """gpuobs-exporter as a child process, collecting every second."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporters.nvml_exporter", "--web.listen-address", "127.0.0.1:0",
             "--interval", "1", "--hostname", "real-gpu-test"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + 60
        self.url = None
        while self.url is None and time.monotonic() < deadline:
            try:
                match = SERVING.search(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            if match:
                self.gpus, self.url = int(match.group(1)), match.group(2)
        if self.url is None:
            self.stop()
            pytest.fail("gpuobs-exporter did not start:\n" + "".join(self.log[-40:]))

    def _drain(self, lines: queue.Queue) -> None:
        for line in self.process.stderr:
            self.log.append(line)
            lines.put(line)

    def scrape(self) -> bytes:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            return response.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
