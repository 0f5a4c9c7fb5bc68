"""alertmanager/alertmanager.yml and its routing tests.

The route tree is flat and ordered: action routes first with `continue` (an alert with
action=quarantine reaches automation *and* its severity's receiver), then each team's
severities, then the fleet's. The expected receivers in the tests are derived from the spec's
policy, not from the tree, so `amtool config routes test` checks the tree against intent.
"""

from __future__ import annotations

from collections.abc import Callable

from gpuobs.alerts import ACTIONS, SEVERITIES, xid
from gpuobs.model import FleetModel
from gpuobs.promql import quote
from gpuobs.receivers import DISCARD_RECEIVER

CONFIG = "alertmanager/alertmanager.yml"
ROUTE_TESTS = "alertmanager/tests/routes.yml"


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f"{label}{op}{quote(value)}"


def group_by(model: FleetModel) -> list[str]:
    routing = model.alertmanager.routing
    return list(routing.group_by) if routing.group_by else ["cluster", model.prometheus.host_label, "gpu"]


def _receiver(receiver, secret_file: Callable[[str], str]) -> dict:
    out: dict = {"name": receiver.name}
    resolved = receiver.send_resolved
    if receiver.webhook:
        w = receiver.webhook
        config: dict = {"url": w.url, "send_resolved": resolved}
        if w.max_alerts:
            config["max_alerts"] = w.max_alerts
        http: dict = {}
        if w.bearer_token_file:
            http["authorization"] = {"type": "Bearer", "credentials_file": secret_file(w.bearer_token_file)}
        if w.basic_auth:
            http["basic_auth"] = {"username": w.basic_auth.username,
                                  "password_file": secret_file(w.basic_auth.password_file)}
        if http:
            config["http_config"] = http
        out["webhook_configs"] = [config]
    elif receiver.slack:
        config = {"api_url_file": secret_file(receiver.slack.api_url_file), "send_resolved": resolved,
                  "title": '{{ .CommonLabels.severity | toUpper }}: {{ .CommonAnnotations.summary }}',
                  "text": "{{ range .Alerts }}{{ .Annotations.description }}\n"
                          "{{ .Annotations.runbook_url }}\n{{ end }}"}
        if receiver.slack.channel:
            config["channel"] = receiver.slack.channel
        out["slack_configs"] = [config]
    elif receiver.pagerduty:
        out["pagerduty_configs"] = [{"routing_key_file": secret_file(receiver.pagerduty.routing_key_file),
                                     "send_resolved": resolved, "severity": "{{ .CommonLabels.severity }}",
                                     "description": "{{ .CommonAnnotations.summary }}"}]
    elif receiver.email:
        e = receiver.email
        config = {"to": e.to, "from": e.from_, "smarthost": e.smarthost, "require_tls": e.require_tls,
                  "send_resolved": resolved}
        if e.auth_username:
            config.update(auth_username=e.auth_username, auth_password_file=secret_file(e.auth_password_file))
        out["email_configs"] = [config]
    return out


def _severity_route(model: FleetModel, matchers: list[str], severity: str, receiver: str | None) -> dict:
    route = {"receiver": receiver or DISCARD_RECEIVER,
             "matchers": matchers + [_matcher("severity", severity)]}
    mute = model.alertmanager.routing.mute_warnings_outside
    if severity == "warning" and mute and receiver:
        route["active_time_intervals"] = [mute]
    return route


def routes(model: FleetModel) -> list[dict]:
    routing = model.alertmanager.routing
    tree = [{"receiver": routing.by_action[action], "matchers": [_matcher("action", action)], "continue": True}
            for action in ACTIONS if action in routing.by_action]
    for team in model.teams:
        for severity, receiver in team.receivers:
            tree.append(_severity_route(model, [_matcher("team", team.name)], severity, receiver))
    for severity in SEVERITIES:
        if severity in routing.by_severity:
            tree.append(_severity_route(model, [], severity, routing.by_severity[severity]))
    return tree


def inhibit_rules(model: FleetModel) -> list[dict]:
    h = model.prometheus.host_label
    gpu = "gpu"  # every setup's GPU-level rules carry it (nvidia_gpu_exporter's gain it from the UUID)
    ours = _matcher("family", ".+", "=~")  # only gpuobs alerts carry a family
    rules = [
        # Critical silences warning within one alert family on one GPU (or one host, for host alerts).
        {"source_matchers": [_matcher("severity", "critical"), ours],
         "target_matchers": [_matcher("severity", "warning"), ours],
         "equal": ["family", "cluster", h, gpu]},
        # An exporter that cannot be scraped explains every other alert of its host.
        {"source_matchers": [_matcher("alertname", "GPUExporterDown")],
         "target_matchers": [ours, _matcher("alertname", "GPUExporterDown", "!=")],
         "equal": ["cluster", h]},
        # A GPU known to be gone explains that GPU's other alerts, but not its neighbours'.
        {"source_matchers": [_matcher("alertname", "GPUMissing"), _matcher(gpu, ".+", "=~")],
         "target_matchers": [ours, _matcher("alertname", "GPUMissing", "!=")],
         "equal": ["cluster", h, gpu]},
    ]
    # An XID that follows another (the driver's teardown after a fault) or that another supersedes
    # is held back while its cause alerts on the same GPU.
    for source_alerts, source_codes, target, code in xid.inhibitions({a.name for a in model.alerts}):
        rules.append({"source_matchers": [_matcher("alertname", "|".join(source_alerts), "=~"),
                                          _matcher("xid", "|".join(str(c) for c in source_codes), "=~")],
                      "target_matchers": [_matcher("alertname", target), _matcher("xid", str(code))],
                      "equal": ["cluster", h, gpu]})
    for rule in model.alertmanager.inhibit_rules:
        rules.append({"source_matchers": [_matcher(k, v) for k, v in rule.source.items()],
                      "target_matchers": [_matcher(k, v) for k, v in rule.target.items()],
                      "equal": list(rule.equal)})
    return rules


def config(model: FleetModel, secret_file: Callable[[str], str] = lambda path: path) -> dict:
    """The configuration; `secret_file` says where Alertmanager finds each secret file the spec names."""
    am = model.alertmanager
    r = am.routing
    document: dict = {
        "route": {"receiver": r.default_receiver or DISCARD_RECEIVER, "group_by": group_by(model),
                  "group_wait": r.group_wait, "group_interval": r.group_interval,
                  "repeat_interval": r.repeat_interval, "routes": routes(model)},
        "inhibit_rules": inhibit_rules(model),
        "receivers": [{"name": DISCARD_RECEIVER}] + [_receiver(x, secret_file) for x in am.receivers],
    }
    if am.time_intervals:
        document["time_intervals"] = [{"name": t.name, "time_intervals": [_interval(t)]} for t in am.time_intervals]
    return document


def _interval(interval) -> dict:
    out: dict = {}
    if interval.weekdays:
        out["weekdays"] = list(interval.weekdays)
    if interval.times:
        out["times"] = [{"start_time": t.start_time, "end_time": t.end_time} for t in interval.times]
    out["location"] = interval.location
    return out


def expected_receivers(model: FleetModel, severity: str, action: str, team: str | None) -> list[str]:
    """What the spec says an alert should reach, in the order Alertmanager lists them."""
    routing = model.alertmanager.routing
    found = [routing.by_action[action]] if action in routing.by_action else []
    team_receivers = dict(next((t.receivers for t in model.teams if t.name == team), ()))
    if severity in team_receivers:
        found.append(team_receivers[severity] or DISCARD_RECEIVER)
    elif severity in routing.by_severity:
        found.append(routing.by_severity[severity] or DISCARD_RECEIVER)
    elif not found:
        found.append(routing.default_receiver or DISCARD_RECEIVER)
    return found


def route_tests(model: FleetModel) -> list[dict]:
    """One label set per alert and owning team (and for hosts without a team), plus one for the
    catch-all route."""
    h = model.prometheus.host_label
    owners: dict[str | None, object] = {}
    for host in model.hosts:
        owners.setdefault(host.team, host)
    tests = []
    for alert in model.alerts:
        for team, host in owners.items():
            labels = {"alertname": alert.name, "severity": alert.severity,
                      "action": alert.definition.action, "family": alert.definition.family,
                      "cluster": host.cluster, h: host.name}
            if team:
                labels["team"] = team
            tests.append({"name": f"{alert.name} on {host.name}" + (f" (team {team})" if team else ""),
                          "labels": labels,
                          "receivers": expected_receivers(model, labels["severity"], labels["action"], team)})
    tests += own_route_tests(model)
    tests.append({"name": "an alert no route matches", "labels": {"alertname": "NotFromGpuobs"},
                  "receivers": [model.alertmanager.routing.default_receiver or DISCARD_RECEIVER]})
    return tests


def own_route_tests(model: FleetModel) -> list[dict]:
    """The spec's own alerts, with every label their rule sets: one naming a team reaches that team's
    receivers whatever host it fires for; the others, each owner's as a built-in alert does."""
    h = model.prometheus.host_label
    owners: dict[str | None, object] = {}
    for host in model.hosts:
        owners.setdefault(host.team, host)
    tests = []
    for alert in model.own_rules.alerts:
        for team, host in ({alert.team: owners.get(alert.team, model.hosts[0])} if alert.team else owners).items():
            labels = {"alertname": alert.name, "cluster": host.cluster, h: host.name,
                      **({"team": team} if team else {}), **alert.rule_labels}
            tests.append({"name": f"{alert.name} on {host.name}" + (f" (team {team})" if team else ""),
                          "labels": labels,
                          "receivers": expected_receivers(model, alert.severity, alert.action, team)})
    return tests


def generate(model: FleetModel) -> dict[str, object]:
    if model.alertmanager is None:
        return {}
    return {CONFIG: config(model), ROUTE_TESTS: {"tests": route_tests(model)}}
