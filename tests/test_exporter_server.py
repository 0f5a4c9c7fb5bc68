"""The HTTP side both programs share: gzip, health, TLS and basic auth from an exporter-toolkit
web config, the listen address syntax."""

import base64
import gzip
import http.client
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error

import bcrypt
import pytest
from connection_helpers import closed_within
from exposition_helpers import get

from exporters.connections import Limits, connection_cap
from exporters.exposition import CONTENT_TYPE, Snapshot
from exporters.server import MetricsServer, accepts_gzip, parse_listen_address
from exporters.webconfig import WebConfigError, load_web_config

BODY = b"# HELP gpuobs_gpu_up x\n# TYPE gpuobs_gpu_up gauge\ngpuobs_gpu_up 1\n" * 50


@pytest.fixture
def serve():
    servers = []

    def start(web=None, gate=None, body=BODY, **limits) -> MetricsServer:
        snapshot = Snapshot(body)
        server = MetricsServer(("127.0.0.1", 0), lambda: snapshot, web, gate, Limits(**limits)).start()
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


def _connect(server: MetricsServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _scrape(server: MetricsServer) -> bytes:
    with get(f"{server.url}/metrics", timeout=5) as response:
        return response.read()


def test_idle_connections_past_the_cap_make_room_for_scrapers(serve):
    server = serve(max_connections=8)
    idle = [_connect(server) for _ in range(20)]
    try:
        for _ in range(5):
            assert _scrape(server) == BODY
        closed = [c for c in idle if closed_within(c, 0.05) is not None]
        assert len(closed) >= 12, "the longest waiting connections were closed for the new ones"
    finally:
        for conn in idle:
            conn.close()


def test_over_the_cap_with_every_connection_answered_a_new_one_is_closed_at_once(serve):
    entered, release = threading.Semaphore(0), threading.Event()
    server = serve(gate=lambda: entered.release() or release.wait(10), max_connections=2, workers=2)
    held = [_connect(server) for _ in range(2)]
    try:
        for conn in held:
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert all(entered.acquire(timeout=5) for _ in held), "both scrapes are being answered"
        with _connect(server) as extra:
            assert closed_within(extra, 2) is not None
        release.set()
        for conn in held:
            conn.settimeout(5)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        release.set()
        for conn in held:
            conn.close()


def test_requests_wait_for_one_of_a_bounded_number_of_workers(serve):
    release = threading.Event()
    server = serve(gate=lambda: release.wait(10), workers=3)
    before = {t.name for t in threading.enumerate()}
    conns = [_connect(server) for _ in range(12)]
    try:
        for conn in conns:
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)
        workers = {t.name for t in threading.enumerate()} - before
        assert len([name for name in workers if "worker" in name]) == 3
        release.set()
        for conn in conns:
            conn.settimeout(5)
            assert _raw_rest(conn).startswith(b"HTTP/1.1 200")
    finally:
        release.set()
        for conn in conns:
            conn.close()


def _raw_rest(conn: socket.socket) -> bytes:
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def test_a_client_sending_its_headers_slowly_is_dropped_at_the_header_deadline(serve):
    server = serve(header_timeout=0.5)
    with _connect(server) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        closed = None
        for _ in range(30):  # a byte every 0.1 s: each arrives well within any per-read timeout
            try:
                slow.sendall(b"X")
            except OSError:
                closed = time.monotonic() - started
                break
            assert _scrape(server) == BODY, "others are served meanwhile"
            if closed_within(slow, 0.1) is not None:
                closed = time.monotonic() - started
                break
        assert closed is not None and closed < 1.5


def test_a_connection_that_never_sends_is_dropped_at_the_header_deadline(serve):
    server = serve(header_timeout=0.3)
    with _connect(server) as silent:
        assert closed_within(silent, 3) < 1.5


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_deadline(serve):
    server = serve(idle_timeout=0.5)
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(2):
            client.request("GET", "/-/healthy")
            assert client.getresponse().read() == b"OK\n"
        assert 0.3 < closed_within(client.sock, 5) < 1.5, "kept alive, then closed when idle too long"
    finally:
        client.close()


def test_a_client_that_never_reads_a_large_body_gives_its_worker_back(serve, capfd):
    server = serve(body=BODY * 20000, send_timeout=0.5, workers=1)  # about 1.4 MB
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    try:
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        with get(f"{server.url}/-/healthy", timeout=5) as response:  # waits for the only worker
            assert response.read() == b"OK\n"
        assert 0.4 < time.monotonic() - started < 3
        assert closed_within(stalled, 3) is not None
    finally:
        stalled.close()
    assert "Traceback" not in capfd.readouterr().err


def test_pipelined_requests_are_answered_in_order(serve):
    server = serve()
    answer = _raw(server, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert re.findall(rb"HTTP/1.1 (\d+)", answer) == [b"200", b"404", b"200"]


def test_headers_past_the_limit_end_the_connection(serve):
    server = serve()
    answer = _raw(server, b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 100_000)
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""
    assert _scrape(server) == BODY


def test_the_connection_cap_stays_below_the_open_file_limit(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    assert connection_cap(1000) == 960
    assert connection_cap(100) == 100
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert connection_cap(1000) == 1000


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


def _self_signed(tmp_path, password: bytes | None = None):
    """A certificate for 127.0.0.1, made with cryptography or the openssl command; its key
    encrypted with `password` when given."""
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
        protection = ["-passout", f"pass:{password.decode()}"] if password else ["-nodes"]
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        *protection, "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
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
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
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


def test_a_tls_client_that_never_finishes_its_handshake_is_dropped_at_the_header_deadline(tmp_path, serve):
    cert, key = _self_signed(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    server = serve(load_web_config(config), header_timeout=0.3)
    with _connect(server) as silent:
        assert closed_within(silent, 3) < 1.5
    client = ssl.create_default_context(cafile=str(cert))
    with get(f"{server.url}/metrics", context=client) as response:
        assert response.read() == BODY


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config:\n  cert_file: c.pem\n", "needs cert_file and key_file"),
    ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n", "cannot load TLS files"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [x]\n", "unsupported keys ['cipher_suites']"),
    ("http_server_config:\n  http2: true\n", "unsupported keys ['http_server_config']"),
    ("basic_auth_users:\n  u: plain-text\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  u: $2b$12$short\n", "basic_auth_users.u is not a bcrypt hash"),
    (f"basic_auth_users:\n  u: $2b$99${'a' * 53}\n", "is not a bcrypt hash"),  # no such cost
    (f"basic_auth_users:\n  u: $2x$10${'a' * 53}\n", "is not a bcrypt hash"),
    (f"basic_auth_users:\n  u: '$2b$10${'a' * 52}!'\n", "is not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n",
     "min_version TLS13 is above max_version TLS12"),
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


def test_an_encrypted_tls_key_is_refused_by_name_without_prompting(tmp_path):
    cert, key = _self_signed(tmp_path, password=b"s3cret")
    assert b"ENCRYPTED" in key.read_bytes()
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n")
    with pytest.raises(WebConfigError, match=r"key_file key.pem is encrypted \(password-protected\)"):
        load_web_config(config)


def test_min_version_equal_to_max_version_is_fine(tmp_path):
    cert, key = _self_signed(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
                      "  min_version: TLS13\n  max_version: TLS13\n")
    assert load_web_config(config).ssl_context.maximum_version == ssl.TLSVersion.TLSv1_3


def _auth(tmp_path, users: dict[str, bytes]):
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n" + "".join(f"  {u}: '{h.decode()}'\n" for u, h in users.items()))
    return load_web_config(config).auth


def test_an_unknown_user_is_checked_at_the_highest_configured_cost(tmp_path, monkeypatch):
    auth = _auth(tmp_path, {"cheap": bcrypt.hashpw(b"a", bcrypt.gensalt(4)),
                            "dear": bcrypt.hashpw(b"b", bcrypt.gensalt(6))})
    checked = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: checked.append(hashed) or real(password, hashed))
    assert not auth.check(_basic("nobody", "b")["Authorization"])
    assert checked[-1][:7] == b"$2b$06$", "the dummy hash has the costliest user's cost"
    assert not auth.check(_basic("cheap", "wrong")["Authorization"])
    assert checked[-1][:7] == b"$2b$04$"
    assert auth.check(_basic("dear", "b")["Authorization"])


def test_an_unknown_user_takes_as_long_as_a_wrong_password(tmp_path):
    """The timing the issue measured: 2.6 ms for an unknown user, 411 ms for a known one."""
    auth = _auth(tmp_path, {"prometheus": bcrypt.hashpw(b"pw", bcrypt.gensalt(9))})

    def took(user: str, password: str) -> float:
        started = time.perf_counter()
        assert not auth.check(_basic(user, password)["Authorization"])
        return time.perf_counter() - started

    unknown = min(took("nobody", f"x{i}") for i in range(3))
    wrong = min(took("prometheus", f"x{i}") for i in range(3))
    assert unknown > 0.5 * wrong, f"unknown user {unknown * 1000:.1f} ms, wrong password {wrong * 1000:.1f} ms"


def test_a_missing_web_config_file_is_an_error(tmp_path):
    with pytest.raises(WebConfigError, match="No such file"):
        load_web_config(tmp_path / "absent.yml")
