"""compose/: the demo stack validates with docker-compose (offline), mounts only what
generated/demo holds, publishes only Prometheus and Grafana, and commits no password."""

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT

COMPOSE = ROOT / "compose" / "docker-compose.yml"
needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                   reason="docker-compose not on PATH (Debian: apt-get install docker-compose)")


def compose_config(env_file) -> subprocess.CompletedProcess:
    return subprocess.run(["docker-compose", "-f", str(COMPOSE), "--env-file", str(env_file), "config", "-q"],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@needs_compose
def test_compose_file_is_valid_with_a_password(tmp_path):
    env = tmp_path / ".env"
    env.write_text("GRAFANA_ADMIN_PASSWORD=only-for-this-test\n")
    result = compose_config(env)
    assert result.returncode == 0, result.stderr


@needs_compose
def test_no_password_is_committed(tmp_path):
    env = tmp_path / ".env"
    shutil.copy(ROOT / "compose" / ".env.example", env)
    result = compose_config(env)
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in compose/.env" in result.stderr + result.stdout


def test_every_mounted_path_exists(services):
    mounts = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".."):
                mounts.append((name, source))
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
    generated = {source for _, source in mounts if source.startswith("../generated/")}
    assert generated == {"../generated/demo/prometheus", "../generated/demo/alertmanager",
                         "../generated/demo/grafana/provisioning", "../generated/demo/grafana/dashboards"}


def test_only_prometheus_and_grafana_are_published_on_localhost_by_default(services):
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert set(published) == {"prometheus", "grafana"}
    for ports in published.values():
        assert all(port.startswith("${BIND_ADDRESS:-127.0.0.1}:") for port in ports)


def test_images_are_pinned_and_every_service_has_a_health_check(services):
    for name, service in services.items():
        if "image" in service:
            assert re.search(r":v?\d+\.\d+\.\d+$", service["image"]), f"{name}: pin the image tag"
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name


def test_services_on_127_0_0_1_share_prometheus_network(services):
    """generated/demo scrapes the simulator, Alertmanager and node-exporter on 127.0.0.1."""
    config = yaml.safe_load((ROOT / "generated/demo/prometheus/prometheus.yml").read_text())
    targets = [target for job in config["scrape_configs"] for group in job.get("static_configs", [])
               for target in group["targets"]]
    assert all(t.startswith(("127.0.0.1:", "localhost:")) for t in targets), targets
    for name in ("simulator", "alertmanager", "node-exporter", "webhook"):
        assert services[name]["network_mode"] == "service:prometheus"


def test_the_webhook_sink_is_valid_python(services):
    compile(services["webhook"]["command"][0], "webhook", "exec")
