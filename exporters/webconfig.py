"""The web configuration file of Prometheus' exporter-toolkit: TLS and basic auth.

Same YAML keys as exporter-toolkit, so one file serves our exporter and the Prometheus
exporters beside it. Settings we do not implement are refused by name rather than ignored:
a TLS or auth setting silently dropped would serve metrics less protected than configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# $2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, then 22 characters of salt and 31 of hash.
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class WebConfigError(Exception):
    pass


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    auth: BasicAuth | None


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes.

    bcrypt is slow on purpose (tens of ms per check), too slow for every scrape of every
    target: like exporter-toolkit, results are cached by a SHA-256 of the credentials.
    """

    _CACHE_LIMIT = 1024

    def __init__(self, users: dict[str, bytes]):
        import bcrypt  # only deployments with basic auth need it

        self._bcrypt = bcrypt
        self._users = users
        # An unknown user is checked against a hash of the highest cost configured, so it takes
        # no less time than a known user's wrong password: timing does not reveal user names.
        cost = max(int(_BCRYPT.match(h.decode()).group(1)) for h in users.values())
        self._dummy = bcrypt.hashpw(b"gpuobs", bcrypt.gensalt(cost))
        self._cache: dict[bytes, bool] = {}
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        hashed = self._users.get(user)
        try:
            ok = self._bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        except ValueError:  # a malformed hash in the file never lets anyone in
            ok = False
        with self._lock:
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = ok
        return ok


def load_web_config(path: str | Path) -> WebConfig:
    import yaml  # only deployments with a web config need it

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise WebConfigError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: expected a mapping with tls_server_config and/or basic_auth_users")
    unknown = set(data) - {"tls_server_config", "basic_auth_users"}
    if unknown:
        raise WebConfigError(f"{path}: unsupported keys {sorted(unknown)}; gpuobs supports "
                             "tls_server_config and basic_auth_users")
    tls = _ssl_context(path, data.get("tls_server_config"))
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
        raise WebConfigError(f"{path}: basic_auth_users maps user names to bcrypt hashes")
    for user, hashed in users.items():
        if not _BCRYPT.match(hashed):
            raise WebConfigError(f"{path}: basic_auth_users.{user} is not a bcrypt hash: expected $2a$, $2b$ or "
                                 "$2y$, a cost from 04 to 31 and 53 characters of salt and hash, as "
                                 "htpasswd -nBC 10 or bcrypt.hashpw make")
    auth = None
    if users:
        try:
            auth = BasicAuth({str(u): h.encode() for u, h in users.items()})
        except ImportError:
            raise WebConfigError(f"{path}: basic_auth_users needs the bcrypt package "
                                 "(pip install 'gpuobs[exporter]')") from None
    return WebConfig(tls, auth)


def _ssl_context(path: Path, config) -> ssl.SSLContext | None:
    if not config:
        return None
    if not isinstance(config, dict):
        raise WebConfigError(f"{path}: tls_server_config must be a mapping")
    unknown = set(config) - _TLS_KEYS
    if unknown:
        raise WebConfigError(f"{path}: tls_server_config: unsupported keys {sorted(unknown)}; "
                             f"supported: {sorted(_TLS_KEYS)}")
    if not config.get("cert_file") or not config.get("key_file"):
        raise WebConfigError(f"{path}: tls_server_config needs cert_file and key_file")

    def resolve(name: str) -> str:  # relative to the config file, as exporter-toolkit does
        return str((path.parent / config[name]).resolve())

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _VERSIONS[config.get("min_version", "TLS12")]
        if "max_version" in config:
            context.maximum_version = _VERSIONS[config["max_version"]]
        context.verify_mode = _CLIENT_AUTH[config.get("client_auth_type", "NoClientCert")]
    except KeyError as exc:
        raise WebConfigError(f"{path}: tls_server_config: unsupported value {exc}; versions "
                             f"{sorted(_VERSIONS)}, client_auth_type {sorted(_CLIENT_AUTH)}") from None
    if "max_version" in config and context.minimum_version > context.maximum_version:
        raise WebConfigError(f"{path}: tls_server_config: min_version {config.get('min_version', 'TLS12')} is above "
                             f"max_version {config['max_version']}: no TLS version would be left")
    asked = []

    def password() -> bytes:  # without this, OpenSSL would prompt for one on the terminal
        asked.append(True)
        return b""

    try:
        context.load_cert_chain(resolve("cert_file"), resolve("key_file"), password)
        if config.get("client_ca_file"):
            context.load_verify_locations(resolve("client_ca_file"))
    except (OSError, ssl.SSLError) as exc:
        if asked:
            raise WebConfigError(f"{path}: tls_server_config: key_file {config['key_file']} is encrypted "
                                 "(password-protected), which exporter-toolkit does not support either: "
                                 "decrypt it (openssl pkey -in key.pem -out key-plain.pem)") from None
        raise WebConfigError(f"{path}: cannot load TLS files: {exc}") from None
    if context.verify_mode != ssl.CERT_NONE and not config.get("client_ca_file"):
        raise WebConfigError(f"{path}: client_auth_type {config['client_auth_type']} needs client_ca_file")
    return context
