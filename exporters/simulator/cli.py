"""gpuobs-simulator: simulated GPU hosts serving the NVML exporter's metrics, or exactly what NVIDIA's
dcgm-exporter serves, with faults on demand."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from gpuobs import catalog

from .. import flags
from ..server import parse_listen_address
from ..webconfig import WebConfigError, load_web_config
from . import layout as layouts
from .control import ControlServer
from .fleet import Fleet
from .model import PATTERNS
from .runtime import SimClock, Simulation
from .scenario import ScenarioError, load

log = logging.getLogger("gpuobs-simulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuobs-simulator",
        description="Simulated GPU hosts, one /metrics port per host, serving what gpuobs-exporter or "
                    "dcgm-exporter would.")
    fleet = parser.add_argument_group("fleet (a spec, or flags)")
    fleet.add_argument("--spec", type=Path, help="fleet spec (e.g. specs/demo.yaml): its hosts, GPU models, "
                                                 "MIG layouts and exporter ports")
    fleet.add_argument("--hosts", type=int, default=1, help="without --spec: number of hosts (default 1)")
    fleet.add_argument("--gpus", type=int, default=8, help="without --spec: GPUs per host (default 8)")
    fleet.add_argument("--model", default="A100-SXM4-80GB", help="without --spec: GPU model (default A100-SXM4-80GB)")
    fleet.add_argument("--mig", default="", help="without --spec: MIG profiles on every GPU, e.g. 3g.40gb,4g.40gb")
    fleet.add_argument("--host-prefix", default="gpu-node-", help="without --spec: host name prefix")
    exporter = parser.add_argument_group("exporter (with --spec: each host's from the spec)")
    exporter.add_argument("--exporter", choices=[catalog.GPUOBS, catalog.DCGM_EXPORTER],
                          help="the exporter the hosts imitate (default gpuobs)")
    exporter.add_argument("--dcgm-version", type=int, choices=layouts.DCGM_VERSIONS,
                          help="dcgm-exporter's major version: 3 labels the node Hostname, 4 hostname (default 4)")
    exporter.add_argument("--dcgm-counters", choices=["default", "gpuobs"],
                          help="dcgm-exporter's counters CSV: default (as shipped) or gpuobs (the default plus "
                               "every field gpuobs' alerts and dashboards read); default: default")
    exporter.add_argument("--pods", action="store_true",
                          help="the Kubernetes pod mapping (gpuobs-exporter's --kubernetes-pod-resources, "
                               "dcgm-exporter's): pod, namespace and container labels on every GPU, a pod of its "
                               "own on every MIG instance")
    exporter.add_argument("--hpc-jobs", action="store_true",
                          help="the HPC job mapping (either exporter's --hpc-job-mapping-dir): an hpc_job label on "
                               "every GPU, a job of its own on every MIG instance")
    exporter.add_argument("--workload-gpus", type=int, metavar="N",
                          help="with --pods or --hpc-jobs: only GPUs 0 to N-1 of each host hold a workload, the "
                               "others none (default: every GPU)")
    ports = parser.add_argument_group("ports")
    ports.add_argument("--listen-host", default="127.0.0.1", help="address every host's port binds (default 127.0.0.1)")
    ports.add_argument("--base-port", type=int, help="host i listens on BASE+i (0: ephemeral ports, printed); "
                                                     "default without --spec: 9400")
    ports.add_argument("--port-offset", type=int, default=0, help="with --spec: listen on exporter_port + OFFSET")
    ports.add_argument("--single-port", type=int, help="serve every host on this one port, told apart by the "
                                                       "hostname label (for very large fleets)")
    ports.add_argument("--control-address", default="127.0.0.1:9399",
                       help="control API host:port; empty to disable (default 127.0.0.1:9399)")
    ports.add_argument("--web.config.file", dest="web_config", help="exporter-toolkit web config: TLS, basic auth")
    ports.add_argument("--write-targets", type=Path, help="write a Prometheus file_sd JSON file of the hosts' targets")
    flags.add_server_limits(parser.add_argument_group("metrics server limits, per port"), environment=False)
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--seed", type=int, default=0, help="same seed and fault timings give the same values")
    sim.add_argument("--time-scale", default=1.0, help="simulated seconds per wall second (default 1)")
    sim.add_argument("--step", default=1.0, help="physics step in simulated seconds (default 1)")
    sim.add_argument("--interval", default=1.0, help="wall seconds between snapshots (default 1)")
    sim.add_argument("--scenario", type=Path, help="YAML file of faults started and stopped at simulated times")
    sim.add_argument("--workload", choices=PATTERNS, default="mixed",
                     help="mixed: utilization wandering between 20 and 95 %% in minutes-long phases (default); "
                          "training: hours-long jobs near 100 %% with the framebuffer 95-99 %% held, power pinned "
                          "at the enforced limit by the software power cap, idle gaps between jobs")
    sim.add_argument("--epoch", type=float, help="Unix time of simulated second 0 (default: now)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _layouts(args) -> list[layouts.HostLayout]:
    if args.spec is not None:
        given = [flag for flag, value in (("--exporter", args.exporter), ("--dcgm-version", args.dcgm_version),
                                          ("--dcgm-counters", args.dcgm_counters)) if value is not None]
        if given:
            raise layouts.LayoutError(f"{', '.join(given)}: with --spec each host's exporter comes from the spec")
        hosts = layouts.from_spec(args.spec, args.port_offset, args.base_port)
    else:
        profiles = tuple(p.strip() for p in args.mig.split(",") if p.strip())
        base = 9400 if args.base_port is None else args.base_port
        hosts = layouts.from_flags(args.hosts, args.gpus, args.model, base, args.host_prefix, profiles,
                                   _exporter(args))
    if args.workload_gpus is not None:
        if not (args.pods or args.hpc_jobs):
            raise layouts.LayoutError("--workload-gpus says which GPUs hold a workload: it needs --pods or --hpc-jobs")
        if args.workload_gpus < 0:
            raise layouts.LayoutError(f"--workload-gpus must be 0 or more, not {args.workload_gpus}")
    if args.pods or args.hpc_jobs:
        hosts = [dataclasses.replace(h, pods=args.pods, hpc_jobs=args.hpc_jobs, workload_gpus=args.workload_gpus)
                 for h in hosts]
    return hosts


def _exporter(args) -> layouts.ExporterMode:
    if args.exporter != catalog.DCGM_EXPORTER:
        if args.dcgm_version is not None or args.dcgm_counters is not None:
            raise layouts.LayoutError("--dcgm-version and --dcgm-counters need --exporter dcgm-exporter")
        return layouts.ExporterMode()
    return layouts.ExporterMode(catalog.DCGM_EXPORTER, args.dcgm_version or 4,
                                layouts.dcgm_counters(args.dcgm_counters or "default"))


def build(args) -> tuple[Simulation, ControlServer | None]:
    """The simulation and its control server, started; raises ValueError with a message for the user."""
    from gpuobs.errors import GpuobsError

    try:
        hosts = _layouts(args)
    except GpuobsError as exc:  # a spec the loader refused, with its own precise message
        raise ValueError(str(exc)) from None
    args.interval = flags.positive(args.interval, "--interval", 3600)
    args.step = flags.positive(args.step, "--step", 3600)
    args.time_scale = flags.positive(args.time_scale, "--time-scale", 1e6, unit="")
    limits = flags.server_limits(args, environment=False)
    events = load(args.scenario) if args.scenario else []
    web = load_web_config(args.web_config) if args.web_config else None
    fleet = Fleet(hosts, args.seed, args.step, time.time() if args.epoch is None else args.epoch, args.workload)
    fleet.schedule(events)
    simulation = Simulation(fleet, SimClock(args.time_scale), args.interval, args.listen_host, args.single_port, web,
                            limits)
    control_address = parse_listen_address(args.control_address) if args.control_address else None
    try:
        simulation.start()
    except OSError as exc:
        raise ValueError(f"cannot listen: {exc.strerror}") from None
    control = None
    if control_address is not None:
        try:
            control = ControlServer(control_address, simulation)
        except OSError as exc:
            simulation.stop()
            raise ValueError(f"cannot listen on {args.control_address}: {exc.strerror}") from None
        threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.2}, name="control",
                         daemon=True).start()
    return simulation, control


def _announce(simulation: Simulation, control: ControlServer | None, targets: Path | None) -> None:
    """One line per endpoint on stdout, machine-readable enough for tests and scripts."""
    groups = []
    for endpoint in simulation.endpoints:
        url = f"{endpoint.server.url}/metrics"
        names = ", ".join(h.name for h in endpoint.hosts)
        gpus = sum(len(h.gpus) for h in endpoint.hosts)
        print(f"gpuobs-simulator: serving {names} ({gpus} GPUs) on {url}", flush=True)
        address = f"{simulation.listen_host}:{endpoint.server.port}"
        labels = dict(endpoint.hosts[0].layout.target_labels) if len(endpoint.hosts) == 1 else {}
        groups.append({"targets": [address], "labels": labels})
    if control is not None:
        print(f"gpuobs-simulator: control API on {control.url}/faults", flush=True)
    if targets is not None:
        targets.write_text(json.dumps(groups, indent=2) + "\n")
    print("gpuobs-simulator: ready", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A scrape thread sending a large body takes the GIL back after every send(); with the default
    # 5 ms switch interval it can wait that long each time behind the ticking thread's rendering.
    sys.setswitchinterval(0.0005)
    try:
        simulation, control = build(args)
    except (ValueError, ScenarioError, WebConfigError, layouts.LayoutError) as exc:
        print(f"gpuobs-simulator: {exc}", file=sys.stderr)
        return 1
    _announce(simulation, control, args.write_targets)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    if control is not None:
        control.shutdown()
        control.server_close()
    simulation.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
