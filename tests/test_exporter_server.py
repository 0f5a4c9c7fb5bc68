"""The HTTP side both programs share: gzip, health, TLS and basic auth from an exporter-toolkit
web config, the listen address syntax."""

import base64
import gzip
import shutil
import socket
import ssl
import struct
import subprocess
import time
import urllib.error

import bcrypt
import pytest
from exposition_helpers import get

from exporters.exposition import CONTENT_TYPE, Snapshot
from exporters.server import MetricsServer, accepts_gzip, parse_listen_address
from exporters.webconfig import WebConfigError, load_web_config

BODY = b"# HELP gpuobs_gpu_up x\n# TYPE gpuobs_gpu_up gauge\ngpuobs_gpu_up 1\n" * 50


@pytest.fixture
def serve():
    servers = []

    def start(web=None, gate=None, body=BODY) -> MetricsServer:
        snapshot = Snapshot(body)
        server = MetricsServer(("127.0.0.1", 0), lambda: snapshot, web, gate).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_metrics_plain_and_gzip(serve):
    server = serve()
    with get(f"{server.url}/metrics") as response:
        assert response.headers["Content-Type"] == CONTENT_TYPE
        assert response.headers.get("Content-Encoding") is None
        assert response.read() == BODY
    with get(f"{server.url}/metrics", {"Accept-Encoding": "gzip, deflate"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.read()) == BODY


@pytest.mark.parametrize(("header", "expected"), [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", False), ("identity", False), (None, False),
    ("GZIP", True), ("gzip;q=x", False)])
def test_accept_encoding(header, expected):
    assert accepts_gzip(header) is expected


def test_health_landing_and_not_found(serve):
    server = serve()
    with get(f"{server.url}/-/healthy") as response:
        assert response.read() == b"OK\n"
    with get(f"{server.url}/") as response:
        assert b'href="/metrics"' in response.read()
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(f"{server.url}/nope")
    assert caught.value.code == 404


def _raw(server: MetricsServer, request: bytes) -> bytes:
    """Everything the server answers to `request` on one connection, until it closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_head_on_metrics_answers_the_headers_only(serve):
    server = serve()
    answer = _raw(server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(BODY)}".encode() in head
    assert body == b""


def test_a_get_body_is_never_read_as_a_second_request(serve):
    server = serve()
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    first = (b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(smuggled)).encode()
             + b"\r\n\r\n" + smuggled)
    last = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _raw(server, first + last)
    assert answer.count(b"HTTP/1.1 200") == 2 and b"404" not in answer
    chunked = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled
    answer = _raw(server, chunked)
    assert answer.count(b"HTTP/1.1 200") == 1 and b"404" not in answer, "the connection ends after the answer"


def test_a_scraper_hanging_up_mid_answer_leaves_no_traceback(serve, capfd):
    server = serve(body=BODY * 2000)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.recv(1024)
    time.sleep(0.5)
    assert "Traceback" not in capfd.readouterr().err


def test_a_closed_gate_drops_the_scrape_unanswered(serve):
    server = serve(gate=lambda: False)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        get(f"{server.url}/metrics", timeout=5).read()
    with get(f"{server.url}/-/healthy") as response:
        assert response.status == 200, "only /metrics hangs"


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9400", ("127.0.0.1", 9400)), (":9400", ("0.0.0.0", 9400)), ("0.0.0.0:1", ("0.0.0.0", 1)),
    ("[::1]:9400", ("::1", 9400)), ("localhost:80", ("localhost", 80))])
def test_listen_addresses(text, expected):
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["9400", "host:", "host:99999", "a b:1", ""])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError):
        parse_listen_address(text)


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1, made with cryptography or the openssl command."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl to make a certificate")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        return cert, key
    import ipaddress

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_tls_and_basic_auth_from_an_exporter_toolkit_web_config(tmp_path, serve):
    cert, key = _self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = tmp_path / "web.yml"
    # Relative paths resolve against the config file, as exporter-toolkit does.
    config.write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
                      f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    server = serve(load_web_config(config))
    assert server.url.startswith("https://")
    client = ssl.create_default_context(cafile=str(cert))
    with get(f"{server.url}/metrics", _basic("prometheus", "s3cret"), context=client) as response:
        assert response.read() == BODY
    for headers in ({}, _basic("prometheus", "wrong"), _basic("nobody", "s3cret"), {"Authorization": "Basic !!"}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(f"{server.url}/metrics", headers, context=client)
        assert caught.value.code == 401
        assert caught.value.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        get(f"{server.url.replace('https', 'http')}/metrics", timeout=5).read()
    # Served after a failed handshake: one bad client does not take the server down.
    with get(f"{server.url}/-/healthy", _basic("prometheus", "s3cret"), context=client) as response:
        assert response.status == 200


def test_basic_auth_results_are_cached_so_scrapes_skip_bcrypt(tmp_path, serve, monkeypatch):
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  p: '{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}'\n")
    server = serve(load_web_config(config))
    checks = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: checks.append(1) or real(*a))
    for _ in range(5):
        get(f"{server.url}/metrics", _basic("p", "pw")).read()
    assert len(checks) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config:\n  cert_file: c.pem\n", "needs cert_file and key_file"),
    ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n", "cannot load TLS files"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [x]\n", "unsupported keys ['cipher_suites']"),
    ("http_server_config:\n  http2: true\n", "unsupported keys ['http_server_config']"),
    ("basic_auth_users:\n  u: plain-text\n", "not a bcrypt hash"),
    ("basic_auth_users: [u]\n", "maps user names to bcrypt hashes"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: SSL3\n", "unsupported value"),
    ("- a list\n", "expected a mapping"),
    (": bad: yaml: [\n", "not valid YAML"),
])
def test_web_config_errors_name_the_problem(tmp_path, text, message):
    config = tmp_path / "web.yml"
    config.write_text(text)
    with pytest.raises(WebConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_web_config(config)


def test_a_missing_web_config_file_is_an_error(tmp_path):
    with pytest.raises(WebConfigError, match="No such file"):
        load_web_config(tmp_path / "absent.yml")
