"""The failure mix benchmarks/alert_truth.py replays: Meta's Llama 3 interruption causes, each mapped
to what a GPU exporter shows of it and to the alert that should catch it.

Source: Meta, "The Llama 3 Herd of Models" (arXiv 2407.21783, 2024), table 5: root causes of the 419
unexpected interruptions in 54 days of pre-training on 16,384 H100 GPUs. Counts as the table gives
them; percentages as it prints them (its 30.1 % for the faulty-GPU class is not 148/419, 35.3 %: the
paper's own figure is kept, and the counts weigh the mix).

A class is replayed through its variants (the ways it shows on a GPU, each one or more simulator
faults); a class without variants shows no GPU-level signal at all. The paper splits no class
further: its variants share the class's injections evenly, an assumption of ours. Expected alerts are
names from gpuobs.alerts: for an XID, the tier the alert catalog derives for the code from NVIDIA's XID
catalog (gpuobs/alerts/xid.py), or none where the code raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuobs.alerts import xid

TOTAL = 419
SOURCE = "Meta, The Llama 3 Herd of Models (arXiv 2407.21783), table 5"


@dataclass(frozen=True)
class Variant:
    name: str
    faults: tuple[tuple[str, dict], ...]  # simulator faults started together on one GPU (or host)
    expects: tuple[str, ...]  # alerts any of which detects it; empty: no alert exists for it today
    host_level: bool = False
    at_start: bool = False  # active before Prometheus' first scrape (a count that predates monitoring)
    durations: tuple[tuple[str, float], ...] = ()  # simulated seconds some faults last; others stay


@dataclass(frozen=True)
class FailureClass:
    name: str
    count: int
    percent: float  # as the paper prints it
    variants: tuple[Variant, ...]  # none: no GPU-level signal
    note: str = ""


def xid_alerts(code: int) -> tuple[str, ...]:
    """The alert that should catch this XID, or none where the code raises nothing."""
    name = xid.alert_for(code)
    return (name,) if name else ()


def _xid(name: str, code: int, *more: tuple[str, dict], also: tuple[str, ...] = ()) -> Variant:
    """An XID as the driver logs it (with the codes that follow it), plus other faults."""
    return Variant(name, (("xid", {"code": code, "follow_ons": 1}), *more), xid_alerts(code) + also)


_NONE = ()
CLASSES: tuple[FailureClass, ...] = (
    FailureClass("Faulty GPU (NVLink included)", 148, 30.1, (
        Variant("off the bus (XID 79)", (("xid-79", {"lost_after_s": 0}),), xid_alerts(79) + ("GPUMissing",)),
        _xid("stopped processing (XID 46)", 46),
        _xid("micro-controller halt (XID 62)", 62),
        _xid("context switch timeout (XID 109)", 109),
        _xid("NVLink failure (XID 74, link errors)", 74, ("nvlink-errors", {"per_s": 1.0}), also=("GPUNVLinkErrors",)),
    )),
    FailureClass("GPU HBM3 memory", 72, 17.2, (
        Variant("double-bit error, row remapped (XID 48, 63)", (("xid-48", {}), ("xid", {"code": 63})),
                xid_alerts(48) + ("GPUEccUncorrectable",)),
        _xid("contained error (XID 94)", 94),
        _xid("uncontained error (XID 95)", 95),
        Variant("row remap failure (XID 64)", (("row-remap-failure", {}), ("xid", {"code": 64})),
                xid_alerts(64) + ("GPURowRemapFailure",)),
        Variant("uncorrectable count above 0 at first scrape",
                (("ecc-storm", {"sbe_per_s": 0.0, "dbe_per_s": 1.0}), ("row-remap-pending", {})),
                ("GPUEccUncorrectable",), at_start=True, durations=(("ecc-storm", 2.0),)),
    )),
    FailureClass("Software bug", 54, 12.9, (
        _xid("application fault (XID 13)", 13),
        _xid("GPU page fault (XID 31)", 31),
    ), "most show nothing on a GPU (crashes, hangs); the XIDs some raise belong to the job's owners (info)"),
    FailureClass("Network switch/cable", 35, 8.4, _NONE, "the fabric is outside a GPU exporter's view"),
    FailureClass("Host maintenance (unplanned)", 32, 7.6, (
        Variant("host taken down", (("exporter-hang", {"seconds": 1e6}),), ("GPUExporterDown",), host_level=True),
    )),
    FailureClass("GPU SRAM memory", 19, 4.5, (
        Variant("uncorrectable SRAM error (XID 48, 172)", (("sram-ecc", {}),),
                xid_alerts(48) + ("GPUEccUncorrectable",)),
    )),
    FailureClass("GPU system processor", 17, 4.1, (
        _xid("GSP RPC timeout (XID 119)", 119),
        _xid("GSP error (XID 120)", 120),
    )),
    FailureClass("NIC", 7, 1.7, _NONE, "a host network card"),
    FailureClass("NCCL watchdog timeouts", 7, 1.7, _NONE, "a collective hangs; the GPUs look busy or idle"),
    FailureClass("Silent data corruption", 6, 1.4, _NONE, "silent by definition"),
    FailureClass("GPU thermal interface + sensor", 6, 1.4, (
        # Heat at once (as benchmarks/detection.py does): time to detect then runs from about the onset.
        Variant("thermal interface failing", (("thermal-runaway", {"rate_c_per_min": 6000.0}),),
                ("GPUThermalCritical",)),
    ), "a failed sensor is not simulated"),
    FailureClass("SSD", 3, 0.7, _NONE, "host storage"),
    FailureClass("Power supply", 3, 0.7, _NONE, "a redundant supply's loss shows nothing; a host power-off would "
                                                 "show as the host down"),
    FailureClass("Server chassis", 2, 0.5, _NONE, "a host component"),
    FailureClass("IO expansion board", 2, 0.5, _NONE, "a host component"),
    FailureClass("Dependency", 2, 0.5, _NONE, "a software dependency outside the GPU"),
    FailureClass("CPU", 2, 0.5, _NONE, "a host component"),
    FailureClass("System memory", 2, 0.5, _NONE, "a host component"),
)
PRINTED_AS_IS = {"Faulty GPU (NVLink included)"}  # the paper's percentage disagrees with its count


def allocate(injections: int, minimum: int) -> dict[str, int]:
    """Injections per class with a GPU-level signal: proportional to the counts (largest remainder),
    at least `minimum` each."""
    shown = [c for c in CLASSES if c.variants]
    weight = sum(c.count for c in shown)
    exact = {c.name: injections * c.count / weight for c in shown}
    given = {name: int(share) for name, share in exact.items()}
    for name in sorted(exact, key=lambda n: exact[n] - given[n], reverse=True)[:injections - sum(given.values())]:
        given[name] += 1
    return {name: max(minimum, n) for name, n in given.items()}
