"""Scrape latency and memory of the simulator's server against a naive prometheus_client collector.

    python benchmarks/scrape.py                  # the table for 8, 64, 512 and 4096 GPUs, then the load run
    python benchmarks/scrape.py --sizes 8,64 --load-seconds 0

Both servers run as child processes on 127.0.0.1 and serve the same series of the same simulated
fleet (hosts of 8 A100s, one port): ours from the snapshot rendered on the simulator's 1 s tick,
the baseline from GaugeMetricFamily objects built on every scrape, as a custom collector
typically does. Latency is the client's: request sent to the last body byte read, on a kept-alive
connection; gzip bodies are timed as received, not decompressed. RSS is read from /proc after the
scrapes. The load run is 20 threads scraping one 64-GPU simulator for the given time.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_URL = re.compile(r"on (https?://\S+)/metrics")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Server:
    """A child process serving /metrics; its first announced URL is where it listens."""

    def __init__(self, args: list[str], startup_timeout: float = 60):
        self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + startup_timeout
        self.host = self.port = None
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = _URL.search(line)
            if match:
                host_port = match.group(1).split("//", 1)[1]
                self.host, _, port = host_port.rpartition(":")
                self.port = int(port)
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(lines))
        threading.Thread(target=self.process.stdout.read, daemon=True).start()  # drain

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def simulator(gpus: int, interval: float = 1.0) -> Server:
    hosts, per_host = (gpus // 8, 8) if gpus >= 8 else (1, gpus)
    return Server(["-m", "exporters.simulator", "--hosts", str(hosts), "--gpus", str(per_host), "--single-port", "0",
                   "--control-address", "", "--seed", "1", "--interval", str(interval)])


def baseline(gpus: int) -> Server:
    return Server([str(Path(__file__).resolve()), "--serve-baseline", str(gpus)])


def scrape(connection: http.client.HTTPConnection, gzip: bool) -> tuple[float, bytes]:
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    started = time.perf_counter()
    connection.request("GET", "/metrics", headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200 or not body:
        raise RuntimeError(f"scrape failed: HTTP {response.status}, {len(body)} bytes")
    if response.getheader("Content-Encoding", "") != ("gzip" if gzip else ""):
        raise RuntimeError("unexpected Content-Encoding")
    return elapsed, body


def measure(server: Server, scrapes: int, gzip: bool) -> dict:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
    try:
        for _ in range(2):  # warm-up: first render, first gzip
            scrape(connection, gzip)
        times, size = [], 0
        for _ in range(scrapes):
            elapsed, body = scrape(connection, gzip)
            times.append(elapsed * 1000)
            size = len(body)
    finally:
        connection.close()
    times.sort()
    return {"median": statistics.median(times), "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            "bytes": size}


def load(seconds: float = 60, threads: int = 20, gpus: int = 64, warmup: float = 2.0) -> dict:
    """`threads` concurrent scrapers against one simulator for `seconds`; RSS after warm-up and at the end."""
    with simulator(gpus) as server:
        stop = threading.Event()
        results: list[list[float]] = [[] for _ in range(threads)]
        failures: list[str] = []

        def scraper(times: list[float], gzip: bool) -> None:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
            while not stop.is_set():
                try:
                    elapsed, body = scrape(connection, gzip)
                    if not gzip and not body.endswith(b"\n"):
                        raise RuntimeError("truncated body")
                    times.append(elapsed * 1000)
                except Exception as exc:  # every failure counts, whatever its kind
                    failures.append(repr(exc))
                    connection.close()
            connection.close()

        workers = [threading.Thread(target=scraper, args=(results[i], i % 2 == 0), daemon=True)
                   for i in range(threads)]
        for worker in workers:
            worker.start()
        time.sleep(warmup)
        rss_start = rss_mib(server.process.pid)
        time.sleep(max(0.0, seconds - warmup))
        rss_end = rss_mib(server.process.pid)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    times = sorted(t for r in results for t in r)
    return {"scrapes": len(times), "failures": len(failures), "first_failures": failures[:3],
            "rss_start_mib": rss_start, "rss_end_mib": rss_end,
            "p50_ms": statistics.median(times) if times else None,
            "p95_ms": times[round(0.95 * (len(times) - 1))] if times else None,
            "max_ms": times[-1] if times else None}


def serve_baseline(gpus: int) -> None:
    """The naive collector: the same simulated fleet, GaugeMetricFamily objects built per scrape."""
    sys.path.insert(0, str(ROOT))
    from prometheus_client import start_http_server
    from prometheus_client.core import REGISTRY, GaugeMetricFamily
    from prometheus_client.registry import Collector

    from exporters.exposition import PROFILE, label_name
    from exporters.simulator.fleet import Fleet
    from exporters.simulator.layout import from_flags
    from gpuobs.catalog import BY_KEY

    hosts, per_host = (gpus // 8, 8) if gpus >= 8 else (1, gpus)
    fleet = Fleet(from_flags(hosts, per_host, "A100-SXM4-80GB", 0), seed=1, epoch=time.time())
    started = time.monotonic()

    class Samples:
        """Stands in for the exposition Builder: keeps samples as data."""

        def __init__(self):
            self.families: dict[str, list] = {}

        def add(self, key, entity, value, extra=()):
            label_names = [label_name(k) for k, _ in entity.pairs] + [k for k, _ in extra]
            label_values = [v for _, v in entity.pairs] + [str(v) for _, v in extra]
            self.families.setdefault(key, []).append((label_names, label_values, float(value)))
            return True

    class NaiveCollector(Collector):
        def collect(self):
            with fleet.lock:
                samples = Samples()
                for host in fleet.hosts:
                    host.emit(samples)
            for key, rows in samples.families.items():
                by_labels: dict[tuple, GaugeMetricFamily] = {}
                for names, values, value in rows:
                    family = by_labels.get(tuple(names))
                    if family is None:
                        family = GaugeMetricFamily(PROFILE.metric(key), BY_KEY[key].help, labels=names)
                        by_labels[tuple(names)] = family
                    family.add_metric(values, value)
                yield from by_labels.values()

    def tick():
        while True:
            fleet.advance_to(time.monotonic() - started)
            time.sleep(1)

    threading.Thread(target=tick, daemon=True).start()
    REGISTRY.register(NaiveCollector())
    server, _thread = start_http_server(0, "127.0.0.1")
    print(f"baseline: serving {gpus} GPUs on http://127.0.0.1:{server.server_port}/metrics", flush=True)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8,64,512,4096", help="GPU counts, comma-separated")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes per measurement (fewer for big baselines)")
    parser.add_argument("--load-seconds", type=float, default=60, help="0 skips the load run")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="the simulator's seconds between snapshots (default 1, its own default)")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    print(f"simulator snapshot every {args.interval:g} s; baseline built on every scrape")
    print(f"{'GPUs':>5} {'server':<9} {'encoding':<8} {'median ms':>10} {'p95 ms':>9} {'body KiB':>9} {'RSS MiB':>8}")
    for gpus in (int(s) for s in args.sizes.split(",")):
        medians = {}
        for name, start in (("gpuobs", lambda n: simulator(n, args.interval)), ("baseline", baseline)):
            with start(gpus) as server:
                # The baseline needs a second or more per scrape at 4096 GPUs: fewer scrapes there.
                scrapes = args.scrapes if name == "gpuobs" else max(5, min(args.scrapes, 20000 // gpus))
                for gzip in (False, True):
                    m = measure(server, scrapes, gzip)
                    medians[(name, gzip)] = m["median"]
                    print(f"{gpus:>5} {name:<9} {'gzip' if gzip else 'identity':<8} {m['median']:>10.2f} "
                          f"{m['p95']:>9.2f} {m['bytes'] / 1024:>9.0f} {rss_mib(server.process.pid):>8.1f}", flush=True)
        for gzip in (False, True):
            ratio = medians[("baseline", gzip)] / medians[("gpuobs", gzip)]
            print(f"{gpus:>5} speed-up over the baseline ({'gzip' if gzip else 'identity'}): {ratio:.1f}x", flush=True)
    if args.load_seconds > 0:
        result = load(args.load_seconds)
        print(f"\nload: 20 scrapers x {args.load_seconds:.0f} s against 64 GPUs: {result['scrapes']} scrapes, "
              f"{result['failures']} failed; latency p50 {result['p50_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms, "
              f"max {result['max_ms']:.2f} ms; RSS {result['rss_start_mib']:.1f} MiB after warm-up, "
              f"{result['rss_end_mib']:.1f} MiB at the end")


if __name__ == "__main__":
    main()
