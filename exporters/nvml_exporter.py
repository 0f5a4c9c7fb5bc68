"""gpuobs-exporter: GPU metrics from NVML in dcgm-exporter's names, for Prometheus.

Collection runs on its own interval (collector.py); XID events on their own thread
(nvml_events.py); scrapes read the latest rendered snapshot (server.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from . import flags
from .attribution import open_attribution
from .collector import Collector, ErrorCounts
from .pods import DEFAULT_SOCKET
from .server import MetricsServer, parse_listen_address
from .webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("gpuobs-exporter")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _env_socket(name: str) -> str | None:
    """A socket's path from the environment: 1, true or yes for the default one, empty or 0 for none."""
    value = os.environ.get(name, "")
    if value.lower() in ("", "0", "false", "no"):
        return None
    return DEFAULT_SOCKET if _env_flag(name) else value


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="gpuobs-exporter", description="Serve NVML GPU metrics in dcgm-exporter's names for Prometheus.",
        epilog="Every flag can also be set by the environment variable in brackets.")
    parser.add_argument("--web.listen-address", dest="listen", default=env("GPUOBS_LISTEN_ADDRESS", "127.0.0.1:9400"),
                        help="host:port to serve on; ':9400' or '0.0.0.0:9400' binds all interfaces "
                             "(default 127.0.0.1:9400) [GPUOBS_LISTEN_ADDRESS]")
    parser.add_argument("--web.config.file", dest="web_config", default=env("GPUOBS_WEB_CONFIG_FILE"),
                        help="exporter-toolkit web config: TLS and basic auth [GPUOBS_WEB_CONFIG_FILE]")
    parser.add_argument("--interval", default=env("GPUOBS_INTERVAL", "5"),
                        help="seconds between collections, independent of scrapes (default 5) [GPUOBS_INTERVAL]")
    parser.add_argument("--hostname", default=env("GPUOBS_HOSTNAME") or socket.gethostname(),
                        help="value of the hostname label (default: this machine's name) [GPUOBS_HOSTNAME]")
    parser.add_argument("--allow-no-gpu", action="store_true", default=_env_flag("GPUOBS_ALLOW_NO_GPU"),
                        help="start without NVML and serve self-health metrics only [GPUOBS_ALLOW_NO_GPU=1]")
    parser.add_argument("--log-level", default=env("GPUOBS_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"], help="[GPUOBS_LOG_LEVEL]")
    parser.add_argument("--kubernetes-pod-resources", dest="pod_resources", nargs="?", const=DEFAULT_SOCKET,
                        metavar="SOCKET", default=_env_socket("GPUOBS_KUBERNETES_POD_RESOURCES"),
                        help="pod, namespace and container labels on the series of each GPU and MIG instance a "
                             "pod holds, from the kubelet's pod-resources API on SOCKET (default "
                             f"{DEFAULT_SOCKET}) [GPUOBS_KUBERNETES_POD_RESOURCES=SOCKET, or 1 for the default]")
    parser.add_argument("--hpc-job-mapping-dir", dest="hpc_job_dir", metavar="DIR",
                        default=env("GPUOBS_HPC_JOB_MAPPING_DIR") or None,
                        help="an hpc_job label on the series of each GPU and MIG instance a batch job holds, from "
                             "the files a scheduler's prolog writes into DIR: named by GPU index (or <gpu>.<GPU "
                             "instance id>), job ids one per line [GPUOBS_HPC_JOB_MAPPING_DIR]")
    parser.add_argument("--process-metrics", action="store_true", default=_env_flag("GPUOBS_PROCESS_METRICS"),
                        help="GPU memory and SM utilization per process [GPUOBS_PROCESS_METRICS=1]")
    parser.add_argument("--process-metrics.max-per-gpu", dest="process_cap", metavar="N",
                        default=env("GPUOBS_PROCESS_METRICS_MAX_PER_GPU", "10"),
                        help="processes with series of their own per GPU or MIG instance; the rest are summed "
                             'into pid="other" (default 10) [GPUOBS_PROCESS_METRICS_MAX_PER_GPU]')
    flags.add_server_limits(parser, environment=True)
    return parser


@dataclass
class Exporter:
    server: MetricsServer
    collector: Collector
    source: object | None  # an NvmlSource; imported only once pynvml is known to be there

    def stop(self) -> None:
        self.server.stop()
        self.collector.stop()
        if self.source is not None:
            import pynvml

            self.source.watcher.stop()
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass  # shutting down anyway


class StartupError(Exception):
    pass


def _open_nvml(hostname: str, errors: ErrorCounts, allow_no_gpu: bool, attribution, process_cap: int | None):
    hint = "check that the NVIDIA driver is installed and libnvidia-ml.so.1 is visible (NVIDIA container runtime)"
    try:
        import pynvml
    except ImportError:
        problem = "the nvidia-ml-py package is not installed (pip install 'gpuobs[exporter]')"
    else:
        from .nvml_processes import Processes
        from .nvml_source import NvmlSource

        try:
            pynvml.nvmlInit()
            processes = Processes(process_cap) if process_cap else None
            return NvmlSource(hostname, errors, attribution=attribution, processes=processes)
        except pynvml.NVMLError as exc:
            problem = f"NVML is not available ({exc}): {hint}"
    if not allow_no_gpu:
        raise StartupError(f"{problem}. Pass --allow-no-gpu to serve self-health metrics only.")
    log.warning("%s; serving self-health metrics only (--allow-no-gpu)", problem)
    errors.count(None, "nvml_init")
    return None


def start(args: argparse.Namespace) -> Exporter:
    """Opens NVML, starts collection and serving; raises StartupError with a message for the user."""
    try:
        address = parse_listen_address(args.listen)
        web = load_web_config(args.web_config) if args.web_config else WebConfig(None, None)
    except (ValueError, WebConfigError) as exc:
        raise StartupError(str(exc)) from None
    try:
        args.interval = flags.positive(args.interval, "--interval (GPUOBS_INTERVAL)")
        limits = flags.server_limits(args, environment=True)
        process_cap = None
        if args.process_metrics:
            process_cap = flags.count(args.process_cap, "--process-metrics.max-per-gpu "
                                      "(GPUOBS_PROCESS_METRICS_MAX_PER_GPU)", 1000)
        attribution = open_attribution(args.pod_resources, args.hpc_job_dir)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    errors = ErrorCounts()
    source = _open_nvml(args.hostname, errors, args.allow_no_gpu, attribution, process_cap)
    collector = Collector(source.collect if source else lambda builder, errors: False, args.interval, "nvml",
                          errors=errors)
    try:
        server = MetricsServer(address, lambda: collector.snapshot, web, limits=limits)
    except OSError as exc:
        raise StartupError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    if source is not None:
        source.watcher.start()
    collector.start()
    server.start()
    gpus = len(source.devices) if source else 0
    log.info("serving %d GPUs on %s/metrics (collecting every %ss)", gpus, server.url, args.interval)
    for on, what in ((args.pod_resources, f"pod labels from the kubelet at {args.pod_resources}"),
                     (args.hpc_job_dir, f"hpc_job labels from {args.hpc_job_dir}"),
                     (process_cap, f"series per process, {process_cap} per GPU or MIG instance at most")):
        if on:
            log.info("with %s", what)
    return Exporter(server, collector, source)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        exporter = start(args)
    except StartupError as exc:
        print(f"gpuobs-exporter: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    exporter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
