"""Wall time of `gpuobs generate` as a process (interpreter start included) for large fleets.

    python benchmarks/generate.py [--runs 5] [--sizes 10,100,1000]

Each fleet has hosts of 8 GPUs spread over 4 clusters, two GPU models, and two teams; the
target is 1,000 hosts x 8 GPUs in under 1 s on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def fleet_spec(hosts: int) -> dict:
    clusters = [f"dc{i}" for i in range(4)]
    return {
        "version": 1,
        "name": f"bench-{hosts}",
        "clusters": [{"name": c} for c in clusters],
        "teams": [{"name": "team-a", "clusters": clusters[:2]}, {"name": "team-b", "clusters": clusters[2:]}],
        "hosts": [{
            "name": f"gpu-{i:05d}",
            "cluster": clusters[i % 4],
            "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
            "labels": {"rack": f"r{i // 16:03d}"},
            "gpus": {"model": "A100-SXM4-80GB" if i % 2 else "H100-SXM5-80GB", "count": 8},
        } for i in range(hosts)],
    }


def time_generate(spec: Path, out: Path, runs: int) -> list[float]:
    command = [sys.executable, "-m", "gpuobs", "generate", str(spec), "-o", str(out)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    print(f"{'hosts':>6} {'GPUs':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'files':>6} {'output KiB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in map(int, args.sizes.split(",")):
            spec = Path(tmp) / f"bench-{hosts}.yaml"
            spec.write_text(yaml.safe_dump(fleet_spec(hosts), sort_keys=False))
            out = Path(tmp) / "out"
            times = time_generate(spec, out, args.runs)
            files = [p for p in (out / f"bench-{hosts}").rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files) / 1024
            print(f"{hosts:>6} {hosts * 8:>6} {statistics.median(times):>9.3f} {min(times):>7.3f} "
                  f"{max(times):>7.3f} {len(files):>6} {size:>10.0f}")


if __name__ == "__main__":
    main()
