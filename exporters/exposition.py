"""Prometheus text exposition of one collection snapshot, names and labels from gpuobs.catalog.

Rendering happens once per snapshot, off the scrape path: every series' `name{labels} ` prefix
is rendered once per entity and cached, so a snapshot costs one formatted value per sample, and
all scrapes of that snapshot share one bytes body (and one gzip body).
"""

from __future__ import annotations

import math
import operator
import threading
import time
import zlib

from gpuobs import catalog

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SERVED_LEVELS = (catalog.GPU, catalog.INSTANCE, catalog.EXPORTER)
# Catalog order, so the output is stable and reads like the catalog.
_CATALOG_ORDER = tuple(m.key for m in catalog.METRICS if m.level in SERVED_LEVELS)
_EXPOSITION_TYPE = {catalog.GAUGE: "gauge", catalog.COUNTER: "counter", catalog.INFO: "gauge"}
# HELP texts where dcgm-exporter's own (its counters CSV, its XID-count collector) differ from the catalog's.
_DCGM_EXPORTER_HELP = {
    "pcie_tx_bytes": "The rate of data transmitted over the PCIe bus - including both protocol headers and data "
                     "payloads - in bytes per second.",
    "pcie_rx_bytes": "The rate of data received over the PCIe bus - including both protocol headers and data "
                     "payloads - in bytes per second.",
    "xid_window_count": "Count of XID Errors within user-specified time window (see xid-count-window-size param).",
}
# dcgm-exporter's XID-count collector puts these among its Labels, which it writes before its Attributes.
_DCGM_EXPORTER_LABEL_EXTRAS = frozenset({"xid", "window_size_in_ms"})
_NAME = operator.itemgetter(0)


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class Vocabulary:
    """How one exporter (a catalog.Profile) writes series: names, label names, HELP/TYPE lines, and which
    metrics it serves at all; the simulator serves gpuobs-exporter's or dcgm-exporter's."""

    __slots__ = ("profile", "order", "headers", "dcgm_exporter")

    def __init__(self, profile: catalog.Profile):
        self.profile = profile
        self.dcgm_exporter = profile.name == catalog.DCGM_EXPORTER
        self.order = tuple(key for key in _CATALOG_ORDER if profile.serves(key))
        helps = _DCGM_EXPORTER_HELP if self.dcgm_exporter else {}
        self.headers = {}
        for key in self.order:
            name, metric = profile.metric(key), catalog.BY_KEY[key]
            self.headers[key] = (f"# HELP {name} {_help(helps.get(key, metric.help))}\n"
                                 f"# TYPE {name} {_EXPOSITION_TYPE[metric.type]}\n")

    def label_name(self, key: str) -> str:
        """An identity label's name in the profile (`model_name` -> `modelName`)."""
        return self.profile.labels[key]

    def arrange(self, extra: tuple, attributes: tuple) -> tuple:
        """A series' labels after the identity ones. gpuobs-exporter writes them as given; dcgm-exporter's
        template ranges over Go maps, so it writes its Labels (the XID-count window) sorted, then its
        Attributes (pod mapping, err_code/err_msg) sorted."""
        if not self.dcgm_exporter:
            return (*extra, *attributes)
        labels = sorted((p for p in extra if p[0] in _DCGM_EXPORTER_LABEL_EXTRAS), key=_NAME)
        others = (p for p in extra if p[0] not in _DCGM_EXPORTER_LABEL_EXTRAS)
        return (*labels, *sorted((*attributes, *others), key=_NAME))


GPUOBS = Vocabulary(catalog.GPUOBS_PROFILE)
# gpuobs-exporter's, which the NVML exporter serves (and what the names below default to).
PROFILE = GPUOBS.profile
ORDER: tuple[str, ...] = GPUOBS.order
HEADERS: dict[str, str] = GPUOBS.headers
label_name = GPUOBS.label_name


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
    `attributes` are literal labels of the entity beyond its identity (dcgm-exporter's pod mapping).
    """

    __slots__ = ("pairs", "labels", "attributes", "vocabulary", "_prefixes")

    def __init__(self, pairs=(), vocabulary: Vocabulary = GPUOBS, attributes=()):
        self.pairs = tuple((k, str(v)) for k, v in pairs if v is not None)
        self.labels = render_labels(self.pairs, vocabulary.label_name)
        self.attributes = tuple(attributes)
        self.vocabulary = vocabulary
        self._prefixes: dict = {}

    def with_attributes(self, attributes: tuple) -> Entity:
        """This entity with other attribute labels (the workload on it now); itself, prefix cache and
        all, while they stay the same."""
        if attributes == self.attributes:
            return self
        return Entity(self.pairs, self.vocabulary, attributes)

    def prefix(self, key: str, extra: tuple = ()) -> str:
        cache_key = (key, extra) if extra else key
        prefix = self._prefixes.get(cache_key)
        if prefix is None:
            # A metric's extra labels (xid, reason, driver_version, ...) are named by the catalog
            # itself, not through the profile's identity mapping.
            extra = self.vocabulary.arrange(extra, self.attributes)
            labels = ",".join(filter(None, (self.labels, render_labels(extra, _literal))))
            name = self.vocabulary.profile.metric(key)
            prefix = f"{name}{{{labels}}} " if labels else f"{name} "
            self._prefixes[cache_key] = prefix
        return prefix


def gpu_entity(index: int, uuid: str | None, pci_bus_id: str | None, model_name: str | None,
               hostname: str, mig_profile: str | None = None, mig_instance: int | None = None, *,
               driver_version: str | None = None, attributes=(), vocabulary: Vocabulary = GPUOBS) -> Entity:
    """dcgm-exporter's identity labels in its template order; `device` is `nvidia<gpu>` as
    dcgm-exporter derives it from the GPU index, not from the device minor number. The driver
    version is a label only under dcgm-exporter (its default counters CSV makes it one);
    gpuobs-exporter serves it on gpu_info."""
    values = {"gpu": index, "uuid": uuid, "pci_bus_id": pci_bus_id, "device": f"nvidia{index}",
              "model_name": model_name, "mig_profile": mig_profile, "mig_instance": mig_instance,
              "hostname": hostname, "driver_version": driver_version if vocabulary.dcgm_exporter else None}
    return Entity(((k, values[k]) for k in vocabulary.profile.labels if k in values), vocabulary, attributes)


EXPORTER = Entity()


class Builder:
    """Collects the samples of one snapshot, family by family, in one exporter's vocabulary."""

    __slots__ = ("_vocabulary", "_lines")

    def __init__(self, vocabulary: Vocabulary = GPUOBS):
        self._vocabulary = vocabulary
        self._lines: dict[str, list[str]] = {key: [] for key in vocabulary.order}

    def add(self, key: str, entity: Entity, value, extra: tuple = ()) -> bool:
        """Adds one sample. Refused (False): a metric the exporter does not serve, so one physics can
        feed every vocabulary, and a non-finite value, never served as a sentinel."""
        lines = self._lines.get(key)
        if lines is None:
            return False
        cls = value.__class__
        if cls is bool:
            value = int(value)
        elif cls is float and not math.isfinite(value):
            return False
        # The prefix cache is read inline: this runs once per sample, hundreds of thousands of
        # times per snapshot on a large simulated fleet.
        prefix = entity._prefixes.get((key, extra) if extra else key) or entity.prefix(key, extra)
        lines.append(f"{prefix}{value}\n")
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
        headers = self._vocabulary.headers
        for key in self._vocabulary.order:
            lines = self._lines[key]
            if lines:
                chunks.append(headers[key].encode())
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
