"""Scrapes under a flood of idle connections: the simulator's server (the exporter's code) with
1,100 kept-alive idle connections open against it, under a 1,024 open-file limit, while 20
scrapers scrape it.

    python benchmarks/connections.py                 # 1,100 idle connections, 20 scrapers, 20 s
    python benchmarks/connections.py --idle 2000 --seconds 10

The simulator (8 hosts of 8 A100s on one port) runs as a child process with its open-file soft
limit at 1,024. Each idle connection asks /-/healthy once and then stays silent; the server closes
the longest waiting ones to stay under its connection cap, and a maintainer reopens them (at most
--reopen-per-s a second), so the flood lasts the whole run. A scraper whose kept-alive connection
turns out closed before any answer retries once on a new connection, as Prometheus does; a scrape
fails when that retry fails too, or the answer is not a 200 with a whole body. Printed: scrapes,
failed scrapes, retries, latency, idle connections the server closed, and the server's RSS,
threads and open files after the flood opened and at the end. This process needs about
--idle + 100 open files (its own limit is raised to its hard limit).
"""

from __future__ import annotations

import argparse
import http.client
import resource
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

from scrape import Server, rss_mib

_CHILD = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, max({limit}, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
sys.argv = ["gpuobs-simulator", "--hosts", "8", "--gpus", "8", "--single-port", "0", "--control-address", "",
            "--seed", "1"]
runpy.run_module("exporters.simulator", run_name="__main__", alter_sys=True)
"""
_HEALTHY = b"GET /-/healthy HTTP/1.1\r\nHost: bench\r\n\r\n"


def process_status(pid: int) -> str:
    threads = next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("Threads:"))
    files = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return f"RSS {rss_mib(pid):.1f} MiB, {threads} threads, {files} open files"


class Idlers:
    """`count` connections that each asked once and stay silent; reopened when the server closes them."""

    def __init__(self, host: str, port: int, count: int, reopen_per_s: float):
        self.address = (host, port)
        self.count = count
        self.reopen_per_s = reopen_per_s
        self.selector = selectors.DefaultSelector()
        self.closed_by_server = 0
        self.open_failures = 0
        self.stop = threading.Event()

    def open_one(self) -> bool:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(_HEALTHY)
            answer = b""
            while not answer.endswith(b"OK\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed before answering")
                answer += chunk
        except OSError:
            self.open_failures += 1
            return False
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ)
        return True

    def open_all(self) -> None:
        for _ in range(self.count):
            self.open_one()

    def maintain(self) -> None:
        """Counts the connections the server closes and reopens them, at most reopen_per_s a second."""
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.1):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()
                    self.closed_by_server += 1
            missing = self.count - len(self.selector.get_map())
            for _ in range(min(missing, max(1, int(self.reopen_per_s / 10)))):
                self.open_one()

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


class Scraper:
    def __init__(self, host: str, port: int, gzip: bool):
        self.host, self.port, self.gzip = host, port, gzip
        self.times: list[float] = []
        self.failures: list[str] = []
        self.retries = 0
        self.connection: http.client.HTTPConnection | None = None

    def _once(self) -> None:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        self.connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if self.gzip else {})
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200 or not body or (not self.gzip and not body.endswith(b"\n")):
            raise RuntimeError(f"HTTP {response.status}, {len(body)} bytes")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                try:
                    self._once()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    # Closed while idle, before any answer: Prometheus retries on a new connection.
                    self.retries += 1
                    self.connection.close()
                    self.connection = None
                    self._once()
                self.times.append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # every failure counts, whatever its kind
                self.failures.append(repr(exc))
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
        if self.connection is not None:
            self.connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1100, help="idle connections (default 1100)")
    parser.add_argument("--scrapers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--server-file-limit", type=int, default=1024, help="the server's open-file soft limit")
    parser.add_argument("--reopen-per-s", type=float, default=100,
                        help="idle connections reopened per second at most, once the server closed them")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + args.scrapers + 100
    if hard != resource.RLIM_INFINITY and hard < wanted:
        sys.exit(f"this needs {wanted} open files and the hard limit is {hard}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    with Server(["-c", _CHILD.format(limit=args.server_file_limit)]) as server:
        pid = server.process.pid
        print(f"server: simulator, 64 GPUs, open-file limit {args.server_file_limit}; {process_status(pid)}")
        idlers = Idlers(server.host, server.port, args.idle, args.reopen_per_s)
        started = time.monotonic()
        idlers.open_all()
        print(f"{args.idle} idle connections opened in {time.monotonic() - started:.1f} s "
              f"({idlers.closed_by_server + len(idlers.selector.get_map())} accepted so far, "
              f"{idlers.open_failures} refused); {process_status(pid)}", flush=True)
        stop = threading.Event()
        maintainer = threading.Thread(target=idlers.maintain, daemon=True)
        maintainer.start()
        scrapers = [Scraper(server.host, server.port, i % 2 == 0) for i in range(args.scrapers)]
        threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in scrapers]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        status = process_status(pid)
        stop.set()
        idlers.stop.set()
        for thread in [*threads, maintainer]:
            thread.join(timeout=30)
        idlers.close()
    times = sorted(t for s in scrapers for t in s.times)
    failures = [f for s in scrapers for f in s.failures]
    print(f"{args.scrapers} scrapers x {args.seconds:.0f} s: {len(times)} scrapes, {len(failures)} failed, "
          f"{sum(s.retries for s in scrapers)} retried on a new connection")
    if times:
        print(f"latency p50 {statistics.median(times):.2f} ms, p95 {times[round(0.95 * (len(times) - 1))]:.2f} ms, "
              f"max {times[-1]:.2f} ms")
    print(f"idle connections closed by the server: {idlers.closed_by_server}; "
          f"connects refused or unanswered: {idlers.open_failures}")
    print(f"server at the end: {status}")
    for failure in failures[:5]:
        print(f"  failed: {failure}")


if __name__ == "__main__":
    main()
