"""Kubernetes' syntax for what the kubernetes section names: object names, label keys and values,
Secret keys, resource quantities and image references.

Checked while loading, so a bad value is a spec error with its path instead of an API server
rejection at `kubectl apply` time. The rules are Kubernetes' own (apimachinery's validation and
resource.Quantity, distribution's image reference grammar).
"""

from __future__ import annotations

import re
from decimal import Decimal

from gpuobs.errors import shown

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?", re.ASCII)
_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::\d+)?", re.ASCII)
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Kubernetes name (DNS label): at most 63 lower-case letters, digits "
                         "and '-', starting and ending with a letter or digit")
    return value


_PORT_NAME = re.compile(r"(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", re.ASCII)


def port_name(value: str) -> str:
    if not _PORT_NAME.fullmatch(value) or "--" in value:
        raise ValueError(f"{shown(value)} is not a Kubernetes port name: at most 15 lower-case letters, digits "
                         "and '-', with at least one letter")
    return value


def dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Kubernetes object name: lower-case letters, digits, '-' and '.', "
                         "starting and ending with a letter or digit")
    return value


def label_key(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a label key is a string, not {_kind(value)}")
    prefix, slash, name = value.rpartition("/")
    if (slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))) or len(name) > 63 \
            or not _LABEL_PART.fullmatch(name):
        raise ValueError(f"{shown(value)} is not a Kubernetes label key: an optional DNS prefix and '/', then at most "
                         "63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    return value


def label_value(value) -> str:
    if isinstance(value, (bool, int, float)):
        raise ValueError(f"label values are strings; quote {str(value).lower() if isinstance(value, bool) else value}"
                         " in YAML")
    if not isinstance(value, str):
        raise ValueError(f"a label value is one string, not {_kind(value)}")
    if value and (len(value) > 63 or not _LABEL_PART.fullmatch(value)):
        raise ValueError(f"{shown(value)} is not a Kubernetes label value: at most 63 letters, digits, '-', '_' and "
                         "'.', starting and ending with a letter or digit")
    return value


def label_map(value):
    if not isinstance(value, dict):
        raise ValueError(f"expected a map of label keys to string values, e.g. {{nvidia.com/gpu.present: "
                         f"\"true\"}}; got {_kind(value)}")
    return value


def data_key(value: str) -> str:
    if len(value) > 253 or not _DATA_KEY.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Secret key: letters, digits, '-', '_' and '.'")
    return value


def quantity(value) -> str:
    """A resource quantity (`100m`, `0.5`, `256Mi`); YAML numbers are taken as written."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Kubernetes quantity; use e.g. 100m or 0.5 (CPU), 256Mi or 1Gi "
                         "(memory)")
    return value


def quantity_value(text: str) -> Decimal:
    number, suffix = _QUANTITY.fullmatch(text).groups()
    suffix = suffix or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * Decimal(_SUFFIX[suffix])


def image(value: str) -> str:
    """[registry[:port]/]repository[:tag][@digest], read as container runtimes read it: the first
    part is a registry only when it has a '.' or a port, or is localhost."""
    rest, _, digest = value.partition("@")
    first, slash, remainder = rest.partition("/")
    registry = slash and ("." in first or ":" in first or first == "localhost")
    repository = remainder if registry else rest
    repository, colon, tag = repository.rpartition(":") if ":" in repository else (repository, "", None)
    valid = (not registry or _DOMAIN.fullmatch(first)) and _REPOSITORY.fullmatch(repository) \
        and len(repository) <= 255 and (not colon or _TAG.fullmatch(tag)) and (not digest or _DIGEST.fullmatch(digest))
    if not valid or ("@" in value and not digest):
        raise ValueError(f"{shown(value)} is not an image reference; use e.g. "
                         "registry.example.com/gpuobs-exporter:0.1.0")
    if not digest and tag in (None, "latest"):
        raise ValueError(f"{shown(value)} does not pin a version: give a tag other than latest, or a digest "
                         "(@sha256:...), so every node runs the same exporter")
    return value
