"""A programmatic fleet: racks of inference hosts built in a loop, the case YAML is tedious for.

Python specs build the same classes the YAML format is validated with, and must bind `fleet`.
"""

from gpuobs.spec import Cluster, Exporter, Fleet, Gpus, Host, Team, Thresholds

RACKS = {"r10": "L40S", "r11": "L40S", "r12": "L4"}
# The L4 rack came with NVIDIA's GPU Operator: its dcgm-exporter keeps the default counters, so
# gpuobs reads what those serve and GPUAlertBlind names what they cannot show (ECC, clock events).
DCGM_DEFAULT = Exporter(kind="dcgm-exporter", counters="default")
HOSTS_PER_RACK = 4

hosts = [
    Host(
        name=f"inf-{rack}-{slot:02d}",
        cluster="lab",
        address=f"10.30.{10 + i}.{slot + 10}",
        labels={"rack": rack},
        gpus=Gpus(model=model, count=4 if model == "L40S" else 8),
        exporter=DCGM_DEFAULT if rack == "r12" else None,
    )
    for i, (rack, model) in enumerate(RACKS.items())
    for slot in range(1, HOSTS_PER_RACK + 1)
]

fleet = Fleet(
    clusters=[Cluster(name="lab", labels={"site": "lab-1"})],
    hosts=hosts,
    teams=[Team(name="inference-lab", clusters=["lab"])],
    # L4 cards are 72 W parts that sit at their cap under inference load: warn a little later.
    thresholds={"L4": Thresholds(power_warning_ratio=1.05, power_critical_ratio=1.2)},
)
