"""Prometheus text exposition of one collection snapshot, names and labels from gpuobs.catalog.

Rendering happens once per snapshot, off the scrape path: every series' `name{labels} ` prefix
is rendered once per entity and cached, so a snapshot costs one formatted value per sample, and
all scrapes of that snapshot share one bytes body (and one gzip body).
"""

from __future__ import annotations

import math
import threading
import time
import zlib

from gpuobs import catalog

PROFILE = catalog.PROFILES[catalog.DEFAULT_PROFILE]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SERVED_LEVELS = (catalog.GPU, catalog.INSTANCE, catalog.EXPORTER)
# Catalog order, so the output is stable and reads like the catalog.
ORDER: tuple[str, ...] = tuple(m.key for m in catalog.METRICS if m.level in SERVED_LEVELS)
_EXPOSITION_TYPE = {catalog.GAUGE: "gauge", catalog.COUNTER: "counter", catalog.INFO: "gauge"}


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


HEADERS: dict[str, str] = {
    key: (f"# HELP {PROFILE.metric(key)} {_help(catalog.BY_KEY[key].help)}\n"
          f"# TYPE {PROFILE.metric(key)} {_EXPOSITION_TYPE[catalog.BY_KEY[key].type]}\n")
    for key in ORDER
}


def label_name(key: str) -> str:
    """An identity label's name in the profile (`model_name` -> `modelName`)."""
    return PROFILE.labels[key]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_labels(pairs, names=label_name) -> str:
    """`(key, value)` pairs as `name="value",...`; pairs with value None are left out."""
    return ",".join(f'{names(k)}="{escape(str(v))}"' for k, v in pairs if v is not None)


def _literal(key: str) -> str:
    return key


class Entity:
    """Something series describe (a GPU, a MIG instance, the exporter), with its label text.

    `pairs` are logical identity labels (catalog.GPU_IDENTITY, MIG_IDENTITY), kept as data for
    consumers that need them (the benchmark's baseline); `prefix` is what rendering uses.
    """

    __slots__ = ("pairs", "labels", "_prefixes")

    def __init__(self, pairs=()):
        self.pairs = tuple((k, str(v)) for k, v in pairs if v is not None)
        self.labels = render_labels(self.pairs)
        self._prefixes: dict = {}

    def prefix(self, key: str, extra: tuple = ()) -> str:
        cache_key = (key, extra) if extra else key
        prefix = self._prefixes.get(cache_key)
        if prefix is None:
            # A metric's extra labels (xid, reason, driver_version, ...) are named by the catalog
            # itself, not through the profile's identity mapping.
            labels = ",".join(filter(None, (self.labels, render_labels(extra, _literal))))
            name = PROFILE.metric(key)
            prefix = f"{name}{{{labels}}} " if labels else f"{name} "
            self._prefixes[cache_key] = prefix
        return prefix


def gpu_entity(index: int, uuid: str | None, pci_bus_id: str | None, model_name: str | None,
               hostname: str, mig_profile: str | None = None, mig_instance: int | None = None) -> Entity:
    """dcgm-exporter's identity labels in its template order; `device` is `nvidia<gpu>` as
    dcgm-exporter derives it from the GPU index, not from the device minor number."""
    values = {"gpu": index, "uuid": uuid, "pci_bus_id": pci_bus_id, "device": f"nvidia{index}",
              "model_name": model_name, "mig_profile": mig_profile, "mig_instance": mig_instance,
              "hostname": hostname}
    return Entity((k, values[k]) for k in PROFILE.labels if k in values)


EXPORTER = Entity()


class Builder:
    """Collects the samples of one snapshot, family by family."""

    __slots__ = ("_lines",)

    def __init__(self):
        self._lines: dict[str, list[str]] = {key: [] for key in ORDER}

    def add(self, key: str, entity: Entity, value, extra: tuple = ()) -> bool:
        """Adds one sample; a non-finite value is refused (False), never served as a sentinel."""
        cls = value.__class__
        if cls is bool:
            value = int(value)
        elif cls is float and not math.isfinite(value):
            return False
        # The prefix cache is read inline: this runs once per sample, hundreds of thousands of
        # times per snapshot on a large simulated fleet.
        prefix = entity._prefixes.get((key, extra) if extra else key) or entity.prefix(key, extra)
        self._lines[key].append(f"{prefix}{value}\n")
        return True

    def merge(self, other: Builder) -> None:
        for key, lines in other._lines.items():
            if lines:
                self._lines[key].extend(lines)

    def render(self) -> bytes:
        """The exposition text; this empties the builder. Each family is encoded and its lines
        dropped as soon as it is joined, which keeps the peak memory of a large snapshot near
        twice its body size."""
        chunks = []
        for key in ORDER:
            lines = self._lines[key]
            if lines:
                chunks.append(HEADERS[key].encode())
                chunks.append("".join(lines).encode())
                lines.clear()
        return b"".join(chunks)


class Snapshot:
    """One rendered collection: the body every scrape of it gets, and its gzip form, made once.

    While gzip scrapes keep coming (Prometheus asks for gzip by default), each new snapshot is
    compressed as it is made, on the collector's thread, so no scrape waits for compression.
    """

    __slots__ = ("body", "gzip_seen", "_gzip", "_lock")

    PRECOMPRESS_FOR = 600.0  # seconds after the latest gzip scrape

    def __init__(self, body: bytes, previous: Snapshot | None = None):
        self.body = body
        self.gzip_seen = previous.gzip_seen if previous is not None else None  # monotonic time
        self._gzip: bytes | None = None
        self._lock = threading.Lock()
        if self.gzip_seen is not None and time.monotonic() - self.gzip_seen < self.PRECOMPRESS_FOR:
            self._compressed()

    def gzip_body(self) -> bytes:
        self.gzip_seen = time.monotonic()
        return self._compressed()

    def _compressed(self) -> bytes:
        if self._gzip is None:
            with self._lock:  # concurrent gzip scrapes wait for one compression, not one each
                if self._gzip is None:
                    # Level 1: scrape bodies are repetitive, so it compresses nearly as well as 6,
                    # several times faster.
                    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
                    self._gzip = compressor.compress(self.body) + compressor.flush()
        return self._gzip


EMPTY = Snapshot(b"")
