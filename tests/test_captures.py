"""The generated rules on REAL exporter output: every vendored capture in tests/captures/.

For each capture the test writes a spec describing one host that matches it (exporter kind and
major version; for dcgm-exporter, `counters:` = the DCGM field families the capture serves; the GPU
model whose NVML name is the capture's modelName; a MIG layout matching its instances; the count of
distinct GPUs; every alert on, GPUMemoryPressure too), generates the output, and builds ONE
promtool test file whose input series are the capture's own samples, with the host's target labels
plus job/instance added as Prometheus' scrape adds them, each held flat for 20 minutes (the energy
counter rises by the GPU's power draw each 15s, as on a real GPU). promtool then proves, at 15m
(past every `for`), every alert name of the generated rule file with exact labels and annotations:

1. healthy: nothing fires but the GPUAlertBlind instances the profile implies (from
   `blind_rules(model)`: one for the scrape job per alert its counters never serve, one per GPU and
   alert whose served series the GPU lacks), and what the
   capture's real state warrants (the A100's 1g.5gb MIG instance 9 is 90.1% full:
   GPUMemoryPressure for that instance);
2. hot: GPU 0 at 96 C (T.Limit margin -1 where the capture serves one): exactly one
   GPUThermalCritical, for GPU 0 (one per physical GPU on MIG), plus GPUThermalWarning for it
   (Prometheus raises both; Alertmanager's inhibition silences the warning);
3. power: GPU 0 at 1.2x its limit (its enforced-limit series, else the model's figure): exactly
   one GPUPowerCritical and one GPUPowerSpike, for GPU 0;
4. ECC: where the capture serves the volatile uncorrectable counter, it rising above 0 on GPU 0 raises
   exactly one GPUEccUncorrectable; where it does not, the rule file has no GPUEccUncorrectable
   and GPUAlertBlind{blind_alert="GPUEccUncorrectable"} fires once for the scrape job;
5. XID: dcgm-exporter's DCGM_FI_DEV_XID_ERRORS at 79 on GPU 0 (added with GPU 0's labels where
   the capture lacks it: 4.x serves it only after the first XID) raises exactly one
   GPUXidQuarantine{xid="79"}; nvidia_gpu_exporter serves no XIDs, so GPUXidQuarantine is blind;
6. MIG with pods: the A100's instances relabelled to two pods (see `Scenarios.two_pods`), healthy and hot
   again: still exactly one GPUThermalCritical, and host:gpus:count counts physical GPUs.

In every group `gpu:present:bool` counts every GPU, and it still does with the temperature and
power series removed (a vGPU guest serves neither).

What fires at 15m (healthy: everything; the other columns: what is added to healthy). "Blind" is
GPUAlertBlind, one per blinded alert (for the scrape job: the captures' counters never serve those series):

| capture                         | healthy               | hot     | power   | ECC            | XID           |
|---------------------------------|-----------------------|---------|---------|----------------|---------------|
| dcgm-exporter-4x-l40s-upcloud   | Blind x4 (a)          | +TC +TW | +PC +PS | no rule; Blind | +XQ{xid="79"} |
| dcgm-exporter-4x-l4-kops        | Blind x4 (a)          | +TC +TW | +PC +PS | no rule; Blind | +XQ{xid="79"} |
| dcgm-exporter-3x-a100-mig-runai | Blind x6 (b), +MP (d) | +TC +TW | +PC +PS | no rule; Blind | +XQ{xid="79"} |
| dcgm-exporter-3x-t4-pod-runai   | Blind x4 (a)          | +TC +TW | +PC +PS | no rule; Blind | +XQ{xid="79"} |
| nvidia-gpu-exporter-l40s-idle   | Blind x4 (c)          | +TC +TW | +PC +PS | +EU            | Blind         |

TC/TW: GPUThermalCritical/GPUThermalWarning, PC/PS: GPUPowerCritical/GPUPowerSpike, XQ:
GPUXidQuarantine, EU: GPUEccUncorrectable, all for GPU 0; MP: GPUMemoryPressure. "no rule": the
rule file has no GPUEccUncorrectable; XID "Blind": nvidia_gpu_exporter serves no XID series.
(a) GPUEccCorrectableSpike, GPUEccUncorrectable, GPURowRemapPending, GPUThrottling
(b) (a) + GPUNVLinkErrors, GPURowRemapFailure (the A100 has NVLink and row remapping; the T4 no
    row remapping, the Ada boards no NVLink)
(c) GPUXidQuarantine, GPUXidReset, GPUXidDrain, GPUPCIeReplayErrors
(d) for MIG instance 9 (1g.5gb), 90.1% full in the capture itself

Each test prints its row (`pytest -s`). One promtool run per capture; about 3 s each.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from exposition_helpers import samples

from conftest import needs
from gpuobs import tools
from gpuobs.alerts import BLIND_ALERT
from gpuobs.alerts.coverage import SETUP_LABELS, blind_fill, blind_labels, blind_rules
from gpuobs.catalog import DCGM_EXPORTER, NVIDIA_GPU_EXPORTER, WORKLOAD_LABELS
from gpuobs.errors import ToolError
from gpuobs.generate import load_model, render, write_tree
from gpuobs.generators.prometheus import target_labels
from gpuobs.generators.rules import ALERT_RULES, alert_labels, expected_annotations, rule_files
from gpuobs.gpus import GPU_MODELS
from gpuobs.promql import seconds
from gpuobs.promtool_cases import series_text
from gpuobs.series import PRESENCE_KEYS

pytestmark = needs("promtool")

CAPTURES_DIR = Path(__file__).resolve().parent / "captures"
STEP = 15  # seconds between samples and rule evaluations, as a 15s scrape
SAMPLES = 20 * 60 // STEP  # each series spans 20 minutes
EVAL = "15m"  # past every `for` (GPUAlertBlind and GPUHealthLow: 10m)
ECC_RAMP_FROM = 300  # the uncorrectable counter stays flat this long, then +1 per sample
ECC_COUNT = (seconds(EVAL) - ECC_RAMP_FROM) // STEP  # the count at EVAL, which the alert reports
HOT_C = 96
POWER_FACTOR = 1.2
XID = 79
MIG_LABELS = ("GPU_I_PROFILE", "GPU_I_ID")  # dcgm-exporter's MIG instance labels
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"


@dataclass(frozen=True)
class Capture:
    file: str
    kind: str
    version: int | None
    model: str  # the spec's GPU model key; checked against the capture's model name

    @property
    def id(self) -> str:
        return self.file.removesuffix(".prom")


CAPTURES = (
    Capture("dcgm-exporter-4x-l40s-upcloud.prom", DCGM_EXPORTER, 4, "L40S"),
    Capture("dcgm-exporter-4x-l4-kops.prom", DCGM_EXPORTER, 4, "L4"),
    Capture("dcgm-exporter-3x-a100-mig-runai.prom", DCGM_EXPORTER, 3, "A100-SXM4-40GB"),
    Capture("dcgm-exporter-3x-t4-pod-runai.prom", DCGM_EXPORTER, 3, "T4"),
    Capture("nvidia-gpu-exporter-l40s-idle.prom", NVIDIA_GPU_EXPORTER, None, "L40S"),
)


def fmt(value: float) -> str:
    """A number as promtool's series notation reads it: never an exponent (its `+` would read as
    an expansion), never a rounding."""
    value = float(value)
    return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")


def flat(value: float) -> str:
    return f"{fmt(value)}x{SAMPLES}"


# -- the capture --------------------------------------------------------------------------------

class Scrape:
    """A capture's samples, and which GPU each belongs to."""

    def __init__(self, capture: Capture):
        self.capture = capture
        self.rows = [(s.name, dict(s.labels), s.value) for s in samples((CAPTURES_DIR / capture.file).read_text())]
        if capture.kind == NVIDIA_GPU_EXPORTER:
            # nvidia_gpu_exporter labels every series with the UUID alone; the index is on gpu_info.
            self.index = {lbls["uuid"]: lbls["index"] for name, lbls, _ in self.rows if name == "nvidia_smi_gpu_info"}
        self.gpus = sorted({g for _, lbls, _ in self.rows if (g := self.gpu_of(lbls)) is not None}, key=int)

    def gpu_of(self, labels: dict) -> str | None:
        if self.capture.kind == NVIDIA_GPU_EXPORTER:
            return self.index.get(labels.get("uuid"))
        return labels.get("gpu")

    def model_names(self) -> set[str]:
        if self.capture.kind == NVIDIA_GPU_EXPORTER:
            return {lbls["name"] for name, lbls, _ in self.rows if name == "nvidia_smi_gpu_info"}
        return {lbls["modelName"] for _, lbls, _ in self.rows if "modelName" in lbls}

    def families(self) -> list[str]:
        return list(dict.fromkeys(name for name, _, _ in self.rows))

    def dcgm_fields(self) -> list[str]:
        return [f for f in self.families() if f.startswith(("DCGM_FI_", "DCGM_EXP_"))]

    def mig(self) -> dict[str, list[tuple[str, str]]]:
        """GPU -> its MIG instances as (GPU_I_ID, GPU_I_PROFILE), in the capture's order."""
        out: dict[str, list] = {}
        for _, lbls, _ in self.rows:
            if lbls.get("GPU_I_PROFILE"):
                instance = (lbls["GPU_I_ID"], lbls["GPU_I_PROFILE"])
                if instance not in out.setdefault(lbls["gpu"], []):
                    out[lbls["gpu"]].append(instance)
        return out

    def host_name(self) -> str:
        names = {lbls[k] for _, lbls, _ in self.rows for k in ("Hostname", "hostname") if k in lbls}
        return names.pop().lower() if len(names) == 1 else self.capture.id.rsplit("-", 2)[-2] + "-node"


def spec_for(capture: Capture, scrape: Scrape) -> dict:
    exporter: dict = {"kind": capture.kind}
    if capture.kind == DCGM_EXPORTER:
        fields = scrape.dcgm_fields()
        if capture.version == 4 and "DCGM_FI_DEV_XID_ERRORS" not in fields:
            # Both 4.x captures run the default counters CSV, which enables the XID field; 4.x
            # serves its series only once a GPU raised an XID (none had).
            fields.append("DCGM_FI_DEV_XID_ERRORS")
        exporter.update(version=capture.version, counters=fields)
    gpus: dict = {"model": capture.model, "count": len(scrape.gpus)}
    mig = scrape.mig()
    if mig:
        layouts = {tuple(p for _, p in instances) for instances in mig.values()}
        assert len(layouts) == 1, f"one layout per host only: {layouts}"
        gpus["mig"] = {"profiles": list(layouts.pop()), "gpus": sorted(int(g) for g in mig)}
    return {
        "version": 1,
        "name": "capture-" + capture.id,
        "clusters": [{"name": "captures", "exporter": exporter}],
        "hosts": [{"name": scrape.host_name(), "cluster": "captures", "address": "10.0.0.7", "gpus": gpus}],
        "teams": [{"name": "gpu-ops", "clusters": ["captures"]}],
        "alerts": {"GPUMemoryPressure": {"enabled": True}},  # off by default; every alert is proven here
    }


# -- expectations -------------------------------------------------------------------------------

class Oracle:
    """The alerts a test group must raise, with the labels Prometheus gives them."""

    def __init__(self, model, scrape: Scrape):
        self.model = model
        self.scrape = scrape
        self.host = model.hosts[0]
        self.profile = self.host.exporter.profile
        self.scraped = {"job": self.host.exporter.job, "instance": self.host.exporter_target,
                        **target_labels(model, self.host)}

    def series_labels(self, labels: dict) -> dict:
        """A capture row's labels as Prometheus stores them: the scrape adds job, instance, target labels."""
        return {**labels, **self.scraped}

    def reduced(self, labels: dict, level: str) -> dict:
        """A row's labels after the rules' per-GPU (or per-MIG-instance) aggregation."""
        drop = set(WORKLOAD_LABELS) | (set(MIG_LABELS) if level == "gpu" else set())
        out = {k: v for k, v in labels.items() if k not in drop}
        if self.scrape.capture.kind == NVIDIA_GPU_EXPORTER:
            out["gpu"] = labels["uuid"]  # the rules name nvidia_gpu_exporter's GPUs by UUID
        return self.series_labels(out)

    def gpu_labels(self, rows, metric: str, gpu: str, level: str = "gpu") -> list[dict]:
        found = []
        for name, labels, _ in rows:
            if name == metric and self.scrape.gpu_of(labels) == gpu:
                reduced = self.reduced(labels, level)
                if reduced not in found:
                    found.append(reduced)
        return found

    def one(self, rows, metric: str, gpu: str) -> dict:
        found = self.gpu_labels(rows, metric, gpu)
        assert len(found) == 1, f"{metric} of GPU {gpu}: {found}"
        return found[0]

    def alert(self, name: str, labels: dict, value: float, extra: dict | None = None, fill: dict | None = None):
        alert = self.model.alert(name)
        full = {**labels, **(extra or {}), **alert_labels(self.model, alert)}
        return name, full, expected_annotations(self.model, alert, full, value, fill)

    def presence_labels(self, rows, gpu: str) -> dict:
        """The labels of a GPU's gpu:present:bool series."""
        return self.one(rows, self.profile.metric(next(k for k in PRESENCE_KEYS if self.profile.serves(k))), gpu)

    def blind(self, rows) -> list:
        """GPUAlertBlind once for the scrape job per blind rule its setup never serves (valued at the
        capture's GPUs), and per GPU and served-but-absent rule none of whose series the GPU has."""
        out = []
        for rule in blind_rules(self.model):
            if rule.exporter is not self.host.exporter:
                continue
            extra = blind_labels(rule.alert, rule.missing, rule.per_gpu)
            if not rule.per_gpu:
                out.append(self.alert(BLIND_ALERT, {k: self.scraped[k] for k in SETUP_LABELS}, len(self.scrape.gpus),
                                      extra, blind_fill(self.model, rule.alert, rule.missing, False)))
                continue
            for gpu in self.scrape.gpus:
                families = {name for name, labels, _ in rows if self.scrape.gpu_of(labels) == gpu}
                if not families & set(rule.missing):
                    out.append(self.alert(BLIND_ALERT, self.presence_labels(rows, gpu), 1, extra,
                                          blind_fill(self.model, rule.alert, rule.missing, True)))
        return out

    def memory_pressure(self, rows) -> list:
        """The capture's own state: an instance (a GPU without MIG) at or past the warning ratio.
        The scenarios hold the framebuffer series flat at the capture's values."""
        if not (self.profile.serves("fb_used") and self.profile.serves("fb_free")):
            return []
        used, free = self.profile.metric("fb_used"), self.profile.metric("fb_free")
        ratio = dict(self.model.thresholds)[self.host.gpu].memory_used_warning_ratio
        values: dict = {}
        for name, labels, held in rows:
            if name in (used, free):
                value = float(held.removesuffix(f"x{SAMPLES}"))
                key = tuple(sorted(self.reduced(labels, "instance").items()))
                values.setdefault(key, {})[name] = value
        out = []
        for key, v in values.items():
            percent = 100 * (v[used] / (v[used] + v[free]))
            if percent >= ratio * 100:
                out.append(self.alert("GPUMemoryPressure", dict(key), percent))
        return out

    def healthy(self, rows) -> list:
        return self.blind(rows) + self.memory_pressure(rows)


def names_of(alerts) -> list[str]:
    return sorted(name for name, _, _ in alerts)


# -- scenarios: the capture, changed on GPU 0 ----------------------------------------------------

class Scenarios:
    def __init__(self, model, scrape: Scrape, oracle: Oracle):
        self.model, self.scrape, self.oracle = model, scrape, oracle
        self.profile = oracle.profile
        self.gpu0 = scrape.gpus[0]

    def metric(self, key: str) -> str | None:
        """The series name of a logical metric, where the profile serves it."""
        return self.profile.metric(key) if self.profile.serves(key) else None

    def has(self, rows, key: str) -> bool:
        name = self.metric(key)
        return any(n == name for n, _, _ in rows)

    def baseline(self) -> list:
        """Every sample held flat; the energy counter rises by the GPU's draw (mJ per 15s)."""
        power = self.metric("power_usage")
        draw = {self.scrape.gpu_of(lbls): v for n, lbls, v in self.scrape.rows if n == power}
        out = []
        for name, labels, value in self.scrape.rows:
            if name == ENERGY:
                step = max(1, round(draw.get(self.scrape.gpu_of(labels), 100) * STEP * 1000))
                values = f"{fmt(value)}+{step}x{SAMPLES}"
            else:
                values = flat(value)
            out.append((name, labels, values))
        return out

    def on_gpu0(self, rows, key: str, values: str) -> list:
        name = self.metric(key)
        return [(n, lbls, values if n == name and self.scrape.gpu_of(lbls) == self.gpu0 else v) for n, lbls, v in rows]

    def hot(self, rows) -> list:
        rows = self.on_gpu0(rows, "gpu_temp", flat(HOT_C))
        return self.on_gpu0(rows, "gpu_temp_margin", flat(-1)) if self.has(rows, "gpu_temp_margin") else rows

    def power_limit(self) -> tuple[float, str]:
        for key in ("enforced_power_limit", "power_limit"):
            name = self.metric(key)
            found = [v for n, lbls, v in self.scrape.rows if n == name and self.scrape.gpu_of(lbls) == self.gpu0]
            if found:
                return found[0], name
        return GPU_MODELS[self.oracle.host.gpu.key].power_limit_watts, "the model's figure"

    def power(self, rows) -> list:
        limit, _ = self.power_limit()
        return self.on_gpu0(rows, "power_usage", flat(POWER_FACTOR * limit))

    def ecc(self, rows) -> list:
        start = ECC_RAMP_FROM // STEP
        return self.on_gpu0(rows, "ecc_dbe_volatile", f"0x{start - 1} 0+1x{SAMPLES - start + 1}")

    def xid(self, rows) -> list:
        name = self.profile.metric("xid_last")
        if not any(n == name for n, _, _ in rows):
            # 4.x serves the field only once an XID happened: the series appears with GPU 0's labels.
            temp = self.profile.metric("gpu_temp")
            rows = rows + [(name, lbls, v) for n, lbls, v in rows
                           if n == temp and self.scrape.gpu_of(lbls) == self.gpu0]
        out = []
        for n, lbls, v in rows:
            if n == name and self.scrape.gpu_of(lbls) == self.gpu0:
                # 3.3.6 and later label the series with the last XID's code and message.
                if "err_code" in lbls:
                    lbls = {**lbls, "err_code": str(XID), "err_msg": "GPU has fallen off the bus."}
                v = flat(XID)
            out.append((n, lbls, v))
        return out

    def two_pods(self, rows) -> list:
        """THE TEST'S OWN CHANGE to the MIG capture (published with empty pod labels): dcgm-exporter's
        pod mapping labels each instance with the pod using it; here instance 7 runs one pod and
        instance 9 another, instance 5 is idle. Values are unchanged."""
        pods = {"7": {"pod": "train-a-0", "namespace": "team-a", "container": "trainer"},
                "9": {"pod": "infer-b-0", "namespace": "team-b", "container": "server"}}
        on_gpu0 = lambda lbls: self.scrape.gpu_of(lbls) == self.gpu0  # noqa: E731
        return [(n, {**lbls, **pods.get(lbls.get("GPU_I_ID"), {})} if on_gpu0(lbls) else lbls, v)
                for n, lbls, v in rows]

    def without_temperature(self, rows) -> list:
        """A vGPU guest serves neither temperature nor power."""
        gone = {self.metric(k) for k in ("gpu_temp", "gpu_temp_margin", "power_usage", "total_energy")} - {None}
        return [r for r in rows if r[0] not in gone]


# -- the promtool file --------------------------------------------------------------------------

def group(name: str, oracle: Oracle, rows, alert_names, expected, gpus: int) -> dict:
    """One promtool test group: every alert of the rule file checked at EVAL (`expected` None: counts only)."""
    by_name: dict = {a: [] for a in alert_names}
    for alertname, labels, notes in expected or ():
        assert alertname in by_name, f"{alertname} expected but not in the rule file"
        by_name[alertname].append({"exp_labels": labels, "exp_annotations": notes})
    host = oracle.host
    h = oracle.model.prometheus.host_label
    counts = [
        {"expr": "count(gpu:present:bool)", "eval_time": EVAL, "exp_samples": [{"labels": "{}", "value": gpus}]},
        {"expr": "host:gpus:count", "eval_time": EVAL,
         "exp_samples": [{"labels": series_text("host:gpus:count", {"cluster": host.cluster, h: host.name}),
                          "value": gpus}]},
    ]
    test = {
        "name": name,
        "interval": f"{STEP}s",
        "input_series": [{"series": series_text(n, oracle.series_labels(lbls)), "values": v} for n, lbls, v in rows]
                        + [{"series": series_text("up", oracle.scraped), "values": flat(1)}],
        "promql_expr_test": counts,
    }
    if expected is not None:
        test["alert_rule_test"] = [{"eval_time": EVAL, "alertname": a, "exp_alerts": exp} for a, exp in by_name.items()]
    return test


def describe(alerts, healthy=None) -> str:
    """Alert names with counts: all of them, or (given healthy) only those added to it."""
    names = names_of(alerts)
    if healthy is not None:
        rest = names_of(healthy)
        for n in rest:
            if n in names:
                names.remove(n)
        return " ".join(f"+{n}" for n in names) or "nothing new"
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    return ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.items())


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.id for c in CAPTURES])
def test_capture_alerts(capture: Capture, tmp_path: Path):
    scrape = Scrape(capture)
    # The spec's model is the one whose NVML name the capture reports.
    assert {m.key for m in GPU_MODELS.values() for n in scrape.model_names() if m.matches(n)} == {capture.model}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_for(capture, scrape), sort_keys=False))
    model = load_model(spec)
    out = tmp_path / "out" / model.name
    write_tree(out, render(model))
    assert len(model.exporters) == 1 and model.hosts[0].gpu_count == len(scrape.gpus)
    alert_names = list(dict.fromkeys(rule["alert"] for g in yaml.safe_load((out / ALERT_RULES).read_text())["groups"]
                                     for rule in g["rules"] if "alert" in rule))

    oracle = Oracle(model, scrape)
    s = Scenarios(model, scrape, oracle)
    gpu0, temp = s.gpu0, s.metric("gpu_temp")
    base = s.baseline()
    healthy = oracle.healthy(base)
    # Blind by the setup's configuration: one alert for the scrape job, not one per GPU.
    setup_blind = {labels["blind_alert"] for name, labels, _ in healthy if name == BLIND_ALERT and "gpu" not in labels}
    groups, table = [], {}

    def add(name: str, rows, expected) -> None:
        groups.append(group(f"{capture.id}: {name}", oracle, rows, alert_names, expected, len(scrape.gpus)))

    def on_gpu0(rows, metric: str, *alerts: str, value: float, extra: dict | None = None) -> list:
        return healthy + [oracle.alert(a, oracle.one(rows, metric, gpu0), value, extra) for a in alerts]

    # 1. healthy: the blind alerts the profile implies, and what the capture's own state warrants.
    add("healthy", base, healthy)
    table["healthy"] = describe(healthy)

    # 2. hot GPU 0: one critical and one warning, for the physical GPU.
    hot_rows = s.hot(base)
    hot = on_gpu0(hot_rows, temp, "GPUThermalCritical", "GPUThermalWarning", value=HOT_C)
    add(f"GPU {gpu0} at {HOT_C} C" + (", T.Limit margin -1" if s.has(base, "gpu_temp_margin") else ""), hot_rows, hot)
    table["hot"] = describe(hot, healthy)

    # 3. power at 1.2x the limit.
    limit, limit_from = s.power_limit()
    power_rows = s.power(base)
    power = on_gpu0(power_rows, s.metric("power_usage"), "GPUPowerCritical", "GPUPowerSpike",
                    value=POWER_FACTOR * limit)
    add(f"GPU {gpu0} drawing {POWER_FACTOR}x {fmt(limit)} W ({limit_from})", power_rows, power)
    table["power"] = describe(power, healthy)

    # 4. ECC: the volatile uncorrectable counter rising, or blind where the capture lacks it.
    if s.has(base, "ecc_dbe_volatile"):
        ecc_rows = s.ecc(base)
        ecc = on_gpu0(ecc_rows, s.metric("ecc_dbe_volatile"), "GPUEccUncorrectable", value=ECC_COUNT)
        add(f"GPU {gpu0} uncorrectable ECC errors rising", ecc_rows, ecc)
        table["ECC"] = describe(ecc, healthy)
    else:
        assert "GPUEccUncorrectable" not in alert_names
        assert "GPUEccUncorrectable" in setup_blind
        table["ECC"] = "n/a: GPUAlertBlind{blind_alert=GPUEccUncorrectable}"

    # 5. XID 79 in dcgm-exporter's last-value gauge; nvidia_gpu_exporter serves no XIDs.
    if capture.kind == DCGM_EXPORTER:
        xid_rows = s.xid(base)
        xid = on_gpu0(xid_rows, s.profile.metric("xid_last"), "GPUXidQuarantine", value=1, extra={"xid": str(XID)})
        add(f"GPU {gpu0} XID {XID}", xid_rows, xid)
        table["XID"] = describe(xid, healthy) + f'{{xid="{XID}"}}'
    else:
        assert "GPUXidQuarantine" in setup_blind
        table["XID"] = "n/a: GPUAlertBlind{blind_alert=GPUXidQuarantine}"

    # 6. MIG with two pods on GPU 0's instances: still one alert per physical GPU.
    if scrape.mig():
        pod_rows = s.two_pods(base)
        assert len({labels.get("pod") for name, labels, _ in pod_rows if name == temp}) == 3  # two pods, one idle
        add("MIG instances used by two pods, healthy", pod_rows, healthy)
        pods_hot = s.hot(pod_rows)
        add(f"MIG instances used by two pods, GPU {gpu0} at {HOT_C} C", pods_hot,
            on_gpu0(pods_hot, temp, "GPUThermalCritical", "GPUThermalWarning", value=HOT_C))

    # Presence does not hang on temperature: a vGPU-like GPU is still counted.
    add("temperature and power removed (vGPU-like), GPUs still counted", s.without_temperature(base), None)

    test_file = out / "prometheus" / "captures-test.yml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": [str(Path(p).relative_to("prometheus")) for p in rule_files(model)],
        "evaluation_interval": f"{STEP}s",
        "tests": groups,
    }, sort_keys=False))
    failure = None
    try:
        tools.promtool_test_rules([test_file])
    except ToolError as exc:
        failure = exc.output
    if failure is not None:
        pytest.fail(f"promtool on {capture.file} ({test_file}):\n{failure[-8000:]}")

    print(f"\n{capture.id}: " + " | ".join(f"{k}: {v}" for k, v in table.items())
          + f"\n  blind: {', '.join(sorted(setup_blind))}")
