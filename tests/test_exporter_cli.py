"""gpuobs-exporter as a program: NVML missing, --allow-no-gpu, flags and environment (the
server's limits too), serving fake GPUs over HTTP while one of them is lost."""

import ctypes.util
import gzip
import resource
import shutil
import subprocess
import time

import pynvml
import pytest
from connection_helpers import assert_small_limits_hold
from exposition_helpers import DCGM, find, get, names, value
from nvml_fake import FakeGpu, FakeNvml

from exporters import flags, nvml_exporter
from exporters.connections import Limits
from gpuobs import catalog


def _args(*extra):
    return nvml_exporter.build_parser().parse_args(["--web.listen-address", "127.0.0.1:0", "--hostname", "n1",
                                                    *extra])


def _scrape(exporter, gzip_ok=False) -> bytes:
    headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    with get(f"{exporter.server.url}/metrics", headers) as response:
        body = response.read()
        return gzip.decompress(body) if gzip_ok else body


def test_nvml_missing_exits_1_with_a_clear_message(monkeypatch, capsys):
    FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND).install(monkeypatch)
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0"]) == 1
    message = capsys.readouterr().err
    assert "NVML is not available (NVML Shared Library Not Found)" in message
    assert "--allow-no-gpu" in message


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has NVML")
@pytest.mark.skipif(shutil.which("gpuobs-exporter") is None, reason="gpuobs-exporter is not installed")
def test_the_installed_program_without_a_driver_exits_1():
    result = subprocess.run(["gpuobs-exporter", "--web.listen-address", "127.0.0.1:0"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert "NVML is not available" in result.stderr


def test_allow_no_gpu_serves_self_health_only(monkeypatch):
    FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED).install(monkeypatch)
    exporter = nvml_exporter.start(_args("--allow-no-gpu"))
    try:
        body = _scrape(exporter)
    finally:
        exporter.stop()
    exporter_level = {DCGM.metric(m.key) for m in catalog.METRICS if m.level == catalog.EXPORTER}
    assert names(body) <= exporter_level
    assert value(body, "exporter_collection_errors", gpu="", field="nvml_init") == 1
    assert value(body, "exporter_build_info", source="nvml") == 1
    assert not find(body, "exporter_last_success"), "no cycle ever read a GPU"


def test_serves_gpus_and_shows_one_lost_mid_run(monkeypatch):
    fake = FakeNvml([FakeGpu(0), FakeGpu(1)]).install(monkeypatch)
    exporter = nvml_exporter.start(_args("--interval", "0.05"))
    try:
        assert value(_scrape(exporter, gzip_ok=True), "gpu_up", gpu=1) == 1
        fake.gpus[1].lost = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and value(_scrape(exporter), "gpu_up", gpu=1) != 0:
            time.sleep(0.02)
        body = _scrape(exporter, gzip_ok=True)
    finally:
        exporter.stop()
    assert value(body, "gpu_up", gpu=1) == 0 and not find(body, "gpu_temp", gpu=1)
    assert value(body, "gpu_up", gpu=0) == 1 and value(body, "gpu_temp", gpu=0) == 45
    assert value(body, "gpu_info", gpu=0, hostname="n1") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--web.listen-address", "nowhere"], "is not host:port"),
    (["--web.listen-address", "127.0.0.1:0", "--interval", "0"],
     "--interval (GPUOBS_INTERVAL) must be a number of seconds above 0 and at most 86400, not '0'"),
    (["--web.listen-address", "127.0.0.1:0", "--interval", "nan"], "must be a number of seconds above 0"),
    (["--web.listen-address", "127.0.0.1:0", "--interval", "inf"], "must be a number of seconds above 0"),
    (["--web.listen-address", "127.0.0.1:0", "--interval", "abc"],
     "--interval (GPUOBS_INTERVAL) must be a number of seconds, not 'abc'"),
    (["--web.listen-address", "127.0.0.1:0", "--web.config.file", "/nonexistent/web.yml"], "No such file"),
    (["--web.listen-address", "127.0.0.1:0", "--web.workers", "0"],
     "--web.workers (GPUOBS_WEB_WORKERS) must be a whole number from 1 to 1024, not '0'"),
    (["--web.listen-address", "127.0.0.1:0", "--web.max-connections", "2.5"],
     "--web.max-connections (GPUOBS_WEB_MAX_CONNECTIONS) must be a whole number, not '2.5'"),
    (["--web.listen-address", "127.0.0.1:0", "--web.header-timeout", "nan"],
     "--web.header-timeout (GPUOBS_WEB_HEADER_TIMEOUT) must be a number of seconds above 0 and at most 600, not 'nan'"),
    (["--web.listen-address", "127.0.0.1:0", "--web.idle-timeout", "inf"],
     "--web.idle-timeout (GPUOBS_WEB_IDLE_TIMEOUT) must be a number of seconds above 0 and at most 86400, not 'inf'"),
    (["--web.listen-address", "127.0.0.1:0", "--web.send-timeout", "-1"],
     "--web.send-timeout (GPUOBS_WEB_SEND_TIMEOUT) must be a number of seconds above 0 and at most 600, not '-1'"),
])
def test_bad_settings_exit_1_with_a_message(monkeypatch, capsys, argv, message):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    assert nvml_exporter.main(argv) == 1
    assert message in capsys.readouterr().err


def test_a_web_config_mistake_exits_1_with_a_message(monkeypatch, capsys, tmp_path):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  prometheus: $2b$12$not-a-hash\n")
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0", "--web.config.file", str(config)]) == 1
    assert "basic_auth_users.prometheus is not a bcrypt hash" in capsys.readouterr().err


def test_a_bad_interval_in_the_environment_exits_1_with_a_message(monkeypatch, capsys):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    monkeypatch.setenv("GPUOBS_INTERVAL", "abc")
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0"]) == 1
    assert "--interval (GPUOBS_INTERVAL) must be a number of seconds, not 'abc'" in capsys.readouterr().err


def test_more_connections_than_the_open_file_limit_has_room_for_exit_1_with_a_message(monkeypatch, capsys):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    monkeypatch.setenv("GPUOBS_WEB_MAX_CONNECTIONS", "961")
    assert nvml_exporter.main(["--web.listen-address", "127.0.0.1:0"]) == 1
    assert ("--web.max-connections (GPUOBS_WEB_MAX_CONNECTIONS) must be at most 960 under this process's "
            "open-file limit (ulimit -n; 64 files stay for the process itself), not '961'") in capsys.readouterr().err
    assert flags.server_limits(_args("--web.max-connections", "960"), environment=True).max_connections == 960


def test_server_limits_from_flags_and_environment_take_effect(monkeypatch):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    monkeypatch.setenv("GPUOBS_WEB_HEADER_TIMEOUT", "2")
    exporter = nvml_exporter.start(_args("--web.max-connections", "4"))
    try:
        assert_small_limits_hold(exporter.server.port)
    finally:
        exporter.stop()


def test_a_port_in_use_exits_1(monkeypatch, capsys):
    FakeNvml([FakeGpu(0)]).install(monkeypatch)
    first = nvml_exporter.start(_args())
    try:
        assert nvml_exporter.main(["--web.listen-address", f"127.0.0.1:{first.server.port}"]) == 1
    finally:
        first.stop()
    assert "cannot listen on" in capsys.readouterr().err


def test_defaults_bind_loopback_and_the_environment_sets_every_flag(monkeypatch):
    defaults = nvml_exporter.build_parser().parse_args([])
    assert defaults.listen == "127.0.0.1:9400" and defaults.interval == "5" and not defaults.allow_no_gpu
    monkeypatch.setenv("GPUOBS_LISTEN_ADDRESS", ":9500")
    monkeypatch.setenv("GPUOBS_INTERVAL", "2.5")
    monkeypatch.setenv("GPUOBS_HOSTNAME", "gpu-07")
    monkeypatch.setenv("GPUOBS_WEB_CONFIG_FILE", "/etc/gpuobs/web.yml")
    monkeypatch.setenv("GPUOBS_ALLOW_NO_GPU", "true")
    args = nvml_exporter.build_parser().parse_args([])
    assert (args.listen, args.interval, args.hostname, args.web_config, args.allow_no_gpu) == \
           (":9500", "2.5", "gpu-07", "/etc/gpuobs/web.yml", True)
    flagged = nvml_exporter.build_parser().parse_args(["--interval", "9"])
    assert flagged.interval == "9", "flags win over the environment"


def test_server_limits_default_as_before_and_the_environment_sets_each(monkeypatch):
    assert flags.server_limits(nvml_exporter.build_parser().parse_args([]), environment=True) == Limits()
    for variable, setting in [("GPUOBS_WEB_WORKERS", "4"), ("GPUOBS_WEB_MAX_CONNECTIONS", "50"),
                              ("GPUOBS_WEB_HEADER_TIMEOUT", "2.5"), ("GPUOBS_WEB_IDLE_TIMEOUT", "30"),
                              ("GPUOBS_WEB_SEND_TIMEOUT", "20")]:
        monkeypatch.setenv(variable, setting)
    limits = flags.server_limits(nvml_exporter.build_parser().parse_args([]), environment=True)
    assert limits == Limits(max_connections=50, workers=4, header_timeout=2.5, idle_timeout=30, send_timeout=20)
    flagged = nvml_exporter.build_parser().parse_args(["--web.workers", "8"])
    assert flags.server_limits(flagged, environment=True).workers == 8, "flags win over the environment"
