"""Every generated alert, proven end to end: a simulator fault makes it fire in a real Prometheus
with the labels it promises, and its notification reaches the receiver the generated Alertmanager
routes it to. The inverse, a healthy fleet raising nothing, is tests/test_e2e_healthy.py's.

The fleet is specs/demo.yaml with every duration divided by SCALE (scrape and evaluation every
second, each alert's `for`, group wait and interval, the stale threshold): the spec's own override
keys, so the rules under test come from the same generator as the committed ones. The simulator
runs SCALE times faster than the wall clock, so heat, leaks and error counts build up in seconds.
Rule windows ([5m], [10m], [15m]) stay wall-clock; faults fill them quickly enough.

Each fault runs on its own GPU, all at once; a warning is proven on a GPU where no critical of its
family fires, since the generated inhibitions would (rightly) hold its notification back. The
simulator runs Kubernetes pods on the GPUs (`--pods`), every fourth GPU an idle notebook's:
GPUAllocatedIdle is proven on such a GPU of a host of its own, which a team owns, so its
notification must reach the team's receiver, not the fleet's.

The same proofs run, in the same stack, once per exporter setup: hosts served as gpuobs-exporter,
as dcgm-exporter with the counters CSV gpuobs generates, and as dcgm-exporter with its default
counters, each with the same layout of faults. Where a setup cannot serve an alert (dcgm-exporter's
default counters have no ECC, clock event, row remap pending or NVLink error fields) the proof is
GPUAlertBlind for that setup's scrape job, naming the alert it stands in for; for an alert with fallbacks (neither
dcgm-exporter setup serves the driver's recovery action) it is the fallback the same faults raise.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import re
import time
from dataclasses import dataclass, field

import pytest
import yaml

from conftest import ROOT, needs, until
from exporters.simulator.faults import FAULTS
from exporters.simulator.fleet import IDLE_EVERY
from gpuobs.alerts import ALERTS, BLIND_ALERT, BY_NAME
from gpuobs.demo import port_of
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.rules import active_alerts
from gpuobs.promql import seconds
from gpuobs.stack import AlertmanagerServer, PrometheusServer, SimulatorProcess, free_port
from gpuobs.tools import amtool_receivers
from webhook_sink import Sink

pytestmark = [needs("prometheus"), needs("prometheus-alertmanager"), needs("amtool"), pytest.mark.slow]

SCALE = 15  # the demo scrapes every 15 s; the proofs every second
DEADLINE = 150  # wall seconds from the first fault for every proof; the slowest needs about 70
RECEIVERS = {"critical": "pager", "warning": "chat", "info": "owners"}
# The team owning the hosts of proofs on an idle pod, with a receiver of its own for warnings.
TEAM, TEAM_RECEIVERS = "research", {"warning": "research-chat"}
IDLE_GPU = IDLE_EVERY - 1  # the simulator's first idle notebook pod on each host
IDLE_ALERT = "GPUAllocatedIdle"


@dataclass(frozen=True)
class Placed:
    """An alert's proof (AlertDef.proof: its faults and the labels they give it) placed on a GPU."""

    host: str
    gpu: int | None  # None: a host-level alert (and fault)
    faults: tuple[tuple[str, dict], ...]
    labels: dict = field(default_factory=dict)  # expected beyond the alert's own and the target's
    names_gpu: bool = True  # False: the faults hit the GPU, but the alert can name only its host


GPUS_PER_HOST = 8


def places() -> tuple[dict[str, tuple[str, int | None]], dict[str, int]]:
    """({alert: (host, GPU index or None for the host)}, {host: GPUs}): where each alert's proof
    runs, from the catalog. A GPU carries one scenario: alerts with the same faults share one, the
    others fill hosts of GPUS_PER_HOST GPUs in catalog order; host-level faults get a host of one
    GPU each (an exporter that hangs hides every GPU of its host); a proof on an idle pod gets a
    host whose last GPU is the simulator's first idle notebook."""
    placed: dict[str, tuple[str, int | None]] = {}
    scenarios: list[str] = []
    hosts: dict[str, int] = {}
    for alert in ALERTS:
        faults = alert.proof.faults
        if alert.proof.idle_pod:
            host = f"gpu-node-{alert.name.lower()}"
            placed[alert.name], hosts[host] = (host, IDLE_GPU), IDLE_GPU + 1
            continue
        if not faults:
            continue
        if all(FAULTS[name].host_level for name, _ in faults):
            host = f"gpu-node-{alert.name.lower()}"
            placed[alert.name], hosts[host] = (host, None), 1
            continue
        if repr(faults) not in scenarios:
            scenarios.append(repr(faults))
        index = scenarios.index(repr(faults))
        host = f"gpu-node-{index // GPUS_PER_HOST + 1:02d}"
        placed[alert.name], hosts[host] = (host, index % GPUS_PER_HOST), GPUS_PER_HOST
    return placed, hosts


PLACES, LAYOUT = places()
IDLE_POD_HOSTS = {host for name, (host, _) in PLACES.items() if BY_NAME[name].proof.idle_pod}


@dataclass(frozen=True)
class Setup:
    """An exporter setup under test: its hosts repeat LAYOUT under their own name prefix."""

    name: str
    prefix: str  # replaces "gpu-node" in LAYOUT's host names
    exporter: dict | None  # the hosts' own `exporter` in the spec; None: the cluster's (gpuobs)
    blind: frozenset[str] = frozenset()  # alerts it cannot serve: GPUAlertBlind fires in their place
    # Alerts it cannot serve that have fallbacks: the fallback the same faults raise fires instead.
    fallen_back: frozenset[str] = frozenset()

    def host(self, layout_host: str) -> str:
        return self.prefix + layout_host.removeprefix("gpu-node")


NO_RECOVERY_ACTION = frozenset({"GPURecoveryActionPending"})  # not in any CSV gpuobs writes for dcgm-exporter
SETUPS = (
    Setup("gpuobs", "gpu-node", None),
    Setup("dcgm-gpuobs", "dcgm-node", {"kind": "dcgm-exporter", "counters": "gpuobs"}, fallen_back=NO_RECOVERY_ACTION),
    Setup("dcgm-default", "dcgm-default", {"kind": "dcgm-exporter", "counters": "default"},
          frozenset({"GPUEccCorrectableSpike", "GPUEccUncorrectable", "GPUThrottling", "GPURowRemapPending",
                     "GPUNVLinkErrors"}), NO_RECOVERY_ACTION),
)
SETUP = {s.name: s for s in SETUPS}
HOSTS = {setup.host(name): count for setup in SETUPS for name, count in LAYOUT.items()}
TEAM_HOSTS = [setup.host(name) for setup in SETUPS for name in LAYOUT if name in IDLE_POD_HOSTS]
EXPORTERS = {setup.host(name): setup.exporter for setup in SETUPS if setup.exporter for name in LAYOUT}


def proof_on(setup: Setup, alertname: str) -> Placed:
    """The alert's proof, on the setup's own copy of its place."""
    host, gpu = PLACES[alertname]
    proof = Placed(setup.host(host), gpu, BY_NAME[alertname].proof.faults, BY_NAME[alertname].proof.labels)
    if alertname == "GPUMissing" and setup.exporter is not None:
        # dcgm-exporter has no per-GPU "lost" series: only the host's shortfall says a GPU is gone.
        proof = dataclasses.replace(proof, names_gpu=False)
    if alertname == "GPUHealthLow" and "GPUEccUncorrectable" in setup.blind:
        # Unserved ECC counts as healthy in the score: heat takes the place of the uncorrectable errors.
        proof = dataclasses.replace(proof, faults=(*proof.faults, ("thermal-runaway", {})))
    return proof


CASES = [(setup.name, alertname) for setup in SETUPS for alertname in sorted(PLACES)]
RESULTS: dict[tuple[str, str], tuple[str, float | None]] = {}  # (setup, alert) -> (outcome, seconds after faults)


def scaled(duration: str) -> str:
    """A demo duration on the test's clock: divided by SCALE, at least a second unless zero."""
    total = seconds(duration)
    return "0s" if total == 0 else f"{max(1, math.ceil(total / SCALE))}s"


def scaled_spec(hosts: dict[str, int], sink_url: str, exporters: dict[str, dict] | None = None,
                team_hosts: list[str] = ()) -> dict:
    """specs/demo.yaml with the given hosts on free ports, every duration scaled, and two webhook
    receivers (one per severity) so a notification proves which route it took. `exporters` gives
    hosts an exporter of their own (the others keep the cluster's, gpuobs-exporter); TEAM owns
    `team_hosts`, with receivers of its own."""
    spec = yaml.safe_load((ROOT / "specs" / "demo.yaml").read_text())
    template = spec["hosts"][0]
    spec["hosts"] = [{**copy.deepcopy(template), "name": name, "exporter_port": free_port(),
                      "node_exporter_port": None, "gpus": {**template["gpus"], "count": count}}
                     for name, count in hosts.items()]
    for host in spec["hosts"]:
        if host["name"] in (exporters or {}):
            host["exporter"] = dict(exporters[host["name"]])
    prom = spec["prometheus"]
    demo = load_model(ROOT / "specs" / "demo.yaml")
    spec["prometheus"] = {**prom, "scrape_interval": scaled(prom["scrape_interval"]),
                          "evaluation_interval": scaled(prom["evaluation_interval"]),
                          "exporter_stale_after": scaled(f"{demo.prometheus.exporter_stale_seconds}s"),
                          "self_address": f"127.0.0.1:{free_port()}", "alertmanagers": [f"127.0.0.1:{free_port()}"]}
    spec["alerts"] = {a.name: {"for": scaled(a.for_)} for a in demo.alerts}
    routing = spec["alertmanager"]["routing"]
    receivers = list(RECEIVERS.values())
    if team_hosts:
        spec["teams"] = [{"name": TEAM, "hosts": list(team_hosts), "receivers": TEAM_RECEIVERS}]
        receivers += TEAM_RECEIVERS.values()
    spec["alertmanager"] = {
        "receivers": [{"name": name, "webhook": {"url": f"{sink_url}/{name}"}} for name in receivers],
        "routing": {**routing, "by_severity": RECEIVERS, "group_wait": scaled(routing["group_wait"]),
                    "group_interval": scaled(routing["group_interval"]), "repeat_interval": "1h"},
    }
    return spec


class Stack:
    """Simulator, Prometheus and Alertmanager on one generated configuration, plus the sink."""

    def __init__(self, folder, hosts: dict[str, int], backend: str, exporters: dict[str, dict] | None = None,
                 team_hosts: list[str] = ()):
        self.sink = Sink()
        spec_path = folder / "e2e.yaml"
        spec_path.write_text(yaml.safe_dump(scaled_spec(hosts, self.sink.url, exporters, team_hosts),
                                            sort_keys=False))
        self.model = load_model(spec_path)
        out = folder / "generated"
        write_tree(out, render(self.model))
        self.spec_path = spec_path
        self.prometheus_yml = out / "prometheus" / "prometheus.yml"
        self.alertmanager_yml = out / "alertmanager" / "alertmanager.yml"
        self.backend = backend

    def __enter__(self):
        p = self.model.prometheus
        with contextlib.ExitStack() as servers:
            servers.callback(self.sink.close)
            self.simulator = servers.enter_context(SimulatorProcess(self.spec_path, time_scale=SCALE, pods=True))
            self.alertmanager = servers.enter_context(AlertmanagerServer(
                self.alertmanager_yml, port=port_of(p.alertmanagers[0]), backend=self.backend))
            self.prometheus = servers.enter_context(PrometheusServer(
                self.prometheus_yml, port=port_of(p.self_address), backend=self.backend))
            self._servers = servers.pop_all()
        return self

    def __exit__(self, *exc):
        self._servers.close()

    def wait_until_evaluated(self, gpus: int, timeout: float = 60) -> None:
        """Every exporter scraped and the health rules evaluated for all `gpus`."""
        until(lambda: self.query("count(gpu:health:score)") == [gpus], timeout,
              lambda: f"not every GPU evaluated:\n{self.prometheus.log()[-2000:]}")

    def query(self, expr: str) -> list[float]:
        return [float(r["value"][1]) for r in self.prometheus.query(expr)]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, backend):
    """The fleet with every proof's faults running at once, on every setup's hosts, from the moment
    the rules evaluate."""
    RESULTS.clear()
    with Stack(tmp_path_factory.mktemp("e2e"), HOSTS, backend, EXPORTERS, TEAM_HOSTS) as stack:
        stack.wait_until_evaluated(sum(HOSTS.values()))
        started = set()
        for setup_name, alertname in CASES:
            proof = proof_on(SETUP[setup_name], alertname)
            for name, params in proof.faults:
                if (name, proof.host, proof.gpu) not in started:
                    stack.simulator.start_fault(name, proof.host, proof.gpu, params)
                    started.add((name, proof.host, proof.gpu))
        stack.faults_started = time.time()
        stack.deadline = time.monotonic() + DEADLINE
        yield stack
    if RESULTS:  # shown with pytest -s
        print("\n" + results_table())


def results_table() -> str:
    """Per alert and setup: fired, blind (GPUAlertBlind in its place), fallback (its fallback in its
    place) or failed, with the seconds
    from the faults' start to the first firing evaluation."""
    width = max(map(len, PLACES))
    lines = [f"{'alert':<{width}}  " + "  ".join(f"{s.name:<18}" for s in SETUPS)]
    for alertname in sorted(PLACES):
        cells = []
        for setup in SETUPS:
            outcome, after = RESULTS.get((setup.name, alertname), ("not run", None))
            cells.append(f"{outcome + ('' if after is None else f' {after:5.1f}s'):<18}")
        lines.append(f"{alertname:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def test_every_generated_alert_has_an_end_to_end_proof(tmp_path):
    """The catalog, the committed fleets and the proofs' own fleet name the same alerts; GPUAlertBlind
    (which needs no fault) is proven wherever a setup cannot serve an alert."""
    sink_url = "http://127.0.0.1:9"
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(scaled_spec(HOSTS, sink_url, EXPORTERS, TEAM_HOSTS)))
    model = load_model(path)
    generated = {a.name for a in active_alerts(model)}
    proven = set(PLACES) | ({BLIND_ALERT} if any(s.blind for s in SETUPS) else set())
    # The generated inhibitions would hold back a warning on a GPU where a critical of its family fires.
    critical = {(BY_NAME[name].family, place) for name, place in PLACES.items() if BY_NAME[name].severity == "critical"}
    assert not [name for name, place in PLACES.items()
                if BY_NAME[name].severity == "warning" and (BY_NAME[name].family, place) in critical]
    committed = set()
    for rules in ROOT.glob("generated/*/prometheus/rules/alerts.yml"):
        groups = yaml.safe_load(rules.read_text())["groups"]
        committed |= {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert generated == proven, f"alerts without a proof: {generated - proven}; " \
                                f"proofs of no alert: {proven - generated}"
    assert committed <= proven, f"committed alerts without a proof: {committed - proven}"
    jobs = {setup.name: {h.exporter.job for h in model.hosts if h.name.startswith(setup.prefix + "-")}
            for setup in SETUPS}
    assert all(len(j) == 1 for j in jobs.values()) and len(set.union(*jobs.values())) == len(SETUPS), jobs


def test_scaled_spec_shortens_every_duration_it_names():
    spec = scaled_spec({"h": 1}, "http://127.0.0.1:9")
    assert (spec["prometheus"]["scrape_interval"], spec["prometheus"]["exporter_stale_after"]) == ("1s", "8s")
    assert (spec["alerts"]["GPUHealthLow"]["for"], spec["alerts"]["GPUXidReset"]["for"]) == ("40s", "0s")
    assert spec["alertmanager"]["routing"]["group_wait"] == "1s"


@pytest.mark.parametrize(("setup", "alertname"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_fault_fires_alert_and_notifies_its_receiver(faulty, setup, alertname):
    """The alert fires on the setup's copy of its proof's GPU and reaches its receiver; where the
    setup cannot serve it, GPUAlertBlind does, once for the setup's scrape job and naming the alert."""
    proof = proof_on(SETUP[setup], alertname)
    blind = alertname in SETUP[setup].blind
    RESULTS[setup, alertname] = ("failed", None)
    shown = BLIND_ALERT if blind else alertname
    if alertname in SETUP[setup].fallen_back:
        shown = next(f for f in BY_NAME[alertname].fallbacks if BY_NAME[f].proof.faults == proof.faults)
        proof = dataclasses.replace(proof, labels=BY_NAME[shown].proof.labels)
    alert = next(a for a in faulty.model.alerts if a.name == shown)
    if blind:  # the setup never serves the alert's series: one GPUAlertBlind for its scrape job
        job = next(h.exporter.job for h in faulty.model.hosts if h.name == proof.host)
        target = {"alertname": shown, "cluster": "demo", "job": job, "blind_alert": alertname}
    else:
        target = {"alertname": shown, "cluster": "demo", "host": proof.host}
        if proof.gpu is not None and proof.names_gpu:
            target["gpu"] = str(proof.gpu)
    matcher = ", ".join(f'{k}="{v}"' for k, v in target.items())

    def firing():
        """Firing at any evaluation since the faults started: a proof may fire and resolve (a slowly
        failing cooler levelling off) before the test of its alert comes round."""
        since = math.ceil(time.time() - faulty.faults_started) + 5
        return faulty.prometheus.query(f'last_over_time(ALERTS{{{matcher}, alertstate="firing"}}[{since}s])')

    remaining = max(1.0, faulty.deadline - time.monotonic())
    (series,) = until(firing, remaining, lambda: f"{shown} never fired on {target}: "
                                                 f"{faulty.prometheus.query('ALERTS')}")
    labels = series["metric"]
    # Every alert names the model its inventory puts on the host, a host alert included.
    model = next(h.gpu.key for h in faulty.model.hosts if h.name == proof.host)
    owned = proof.host in TEAM_HOSTS and not blind  # a scrape job's blind spot is the fleet's to fix
    expected = {**target, **({} if blind else {**proof.labels, "gpu_model": model}),
                **({"team": TEAM} if owned else {}), "severity": alert.severity,
                "action": alert.definition.action, "family": alert.definition.family, "alertstate": "firing"}
    assert {k: labels.get(k) for k in expected} == expected
    if "gpu" not in target:
        assert "gpu" not in labels, labels
    if blind:
        assert labels.get("missing"), labels

    (receiver,) = amtool_receivers(faulty.alertmanager_yml, {k: v for k, v in labels.items() if k != "alertstate"})
    assert receiver == (TEAM_RECEIVERS if owned else RECEIVERS)[alert.severity]

    def notified():
        return [(path, body, a) for path, body in faulty.sink.all() for a in body["alerts"]
                if a["status"] == "firing" and all(a["labels"].get(k) == v for k, v in target.items())]

    remaining = max(1.0, faulty.deadline - time.monotonic())
    path, body, sent = until(notified, remaining, lambda: f"no notification of {shown}; Alertmanager has "
                             f"{faulty.alertmanager.alerts()}")[0]
    assert (path, body["receiver"]) == (receiver, receiver)
    assert sent["annotations"]["summary"] == alert.definition.summary
    if blind:
        # As many GPUs as the job has present (a fault elsewhere may have taken one off the bus).
        assert re.match(rf"demo: the [1-9]\d* GPUs of scrape job {target['job']} serve no ",
                        sent["annotations"]["description"]), sent["annotations"]["description"]
        assert f"so {alertname} cannot fire" in sent["annotations"]["description"]
    else:
        assert f"demo/{proof.host}" in sent["annotations"]["description"]
    outcome = "blind" if blind else "fallback" if shown != alertname else "fired"
    RESULTS[setup, alertname] = (outcome, first_firing(faulty, matcher))


def first_firing(stack: Stack, matcher: str) -> float | None:
    """Seconds from the faults' start to the alert's first firing evaluation (negative: it fired before)."""
    window = math.ceil(time.time() - stack.faults_started) + 60
    found = stack.prometheus.query(f'ALERTS{{{matcher}, alertstate="firing"}}[{window}s]')
    stamps = [float(t) for s in found for t, _ in s["values"]]
    return min(stamps) - stack.faults_started if stamps else None
