"""What Prometheus, Grafana and a log pipeline read, checked with their own tools: every
/metrics page passes ``promtool check metrics``, the alerting rules pass ``promtool check
rules``, every dashboard query names a metric the services serve, and every log line the
product writes under gunicorn is JSON, requests logged by route without query or body."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from shared.metrics import Metrics
from shared.testing import ROOT
from tests.conftest import API_KEYS, API_KEYS_ENV
from tests.e2e.product import Product

H = {scope: {"Authorization": f"Bearer {secret}"} for scope, secret in API_KEYS.items()}
DASHBOARD = ROOT / "deploy" / "grafana" / "switchboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SECRET_QUERY = "needle=q-secret-7731"
SECRET_BODY = "b-secret-5519"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI") == "true":  # .ci/run installs it: its absence is a failure there
        pytest.fail("promtool is not installed (.ci/run installs Debian's prometheus)")
    pytest.skip("promtool is not installed here (apt-get install prometheus); CI runs this test")


def traffic(urls: dict[str, str]) -> None:
    """Enough of every service that each metric family has samples: an approved
    verification (its duration), a task and an agent, a CRM profile, a 4xx."""
    with httpx.Client(base_url=urls["identity"], timeout=30) as c:
        r = c.post("/v1/customers/c-obs/factors", json={"type": "totp"}, headers=H["channel"])
        assert r.status_code == 201, r.text
        totp = pyotp.TOTP(r.json()["secret"])
        confirm = c.post(
            f"/v1/customers/c-obs/factors/{r.json()['factor_id']}/confirm",
            json={"code": totp.at(time.time() - 30)},
            headers=H["channel"],
        )
        assert confirm.status_code == 200, confirm.text
        start = c.post(
            "/v1/verifications",
            json={"customer_id": "c-obs", "channel": "chat"},
            headers=H["channel"],
        )
        assert start.status_code == 201, start.text
        check = c.post(
            f"/v1/verifications/{start.json()['verification_id']}/checks",
            json={"factor": "totp", "code": totp.now()},
            headers=H["channel"],
        )
        assert check.json()["status"] == "approved", check.text
        # A query string and a body with values no log line may repeat.
        c.get(f"/v1/verifications/nope?{SECRET_QUERY}", headers=H["channel"])
        c.post("/v1/verifications", json={"customer_id": SECRET_BODY}, headers=H["channel"])
    agent = {"name": "Li", "skills": {"billing": 4}, "languages": ["zh"], "channels": {"chat": 2}}
    task = {
        "channel": "chat",
        "customer_id": "c-obs",
        "category": "basic",
        "skills": {"billing": 3},
        "language": "zh",
        "tier": "gold",
        "sentiment": 0.2,
    }
    with httpx.Client(base_url=urls["routing"], timeout=30) as c:
        assert c.put("/v1/agents/li", json=agent, headers=H["admin"]).status_code == 200
        c.put("/v1/agents/li/status", json={"status": "available"}, headers=H["agent"])
        assert c.post("/v1/tasks", json=task, headers=H["channel"]).status_code == 201
        offers = c.get("/v1/agents/li/reservations", headers=H["agent"]).json()["items"]
        accept = c.post(
            f"/v1/reservations/{offers[0]['reservation_id']}/accept", headers=H["agent"]
        )
        assert accept.status_code == 200, accept.text
        # The service level and the speed of answer appear once an answer is counted.
        deadline = time.monotonic() + 60
        while "sb_routing_service_level_ratio{" not in c.get("/metrics").text:
            assert time.monotonic() < deadline, "no service level on routing's /metrics"
            time.sleep(0.2)
    with httpx.Client(base_url=urls["crm"], timeout=30) as c:
        r = c.post(
            "/v1/profiles/resolve",
            json={"identifiers": [{"type": "phone", "value": "13800138000"}], "create": True},
            headers=H["channel"],
        )
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    directory = tmp_path_factory.mktemp("observability")
    # INFO: the access lines are logged at INFO (the product's default level).
    running = Product(
        directory,
        API_KEYS_ENV,
        API_KEYS["admin"],
        workers=2,
        extra_env={"LOG_LEVEL": "INFO"},
    )
    try:
        traffic(running.urls)
        yield running
    finally:
        running.stop()


def scrape(url: str) -> str:
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200
    return r.text


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def series(text: str) -> set[str]:
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


@pytest.mark.parametrize("service", ["identity", "crm", "routing"])
def test_every_metrics_page_passes_promtool(product: Product, service: str) -> None:
    tool = promtool()
    text = scrape(product.urls[service])
    check = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    # /readyz's checks are on the page too (the readiness alert reads them).
    assert 'sb_readiness_check_up{check="redis"} 1.0' in text
    if service == "identity":
        # The latency is a histogram in seconds, with the approval just made in it.
        count = re.search(r"^sb_identity_verification_duration_seconds_count (\S+)$", text, re.M)
        assert count and float(count.group(1)) >= 1, text


def test_a_consumer_process_metrics_page_passes_promtool() -> None:
    """What a consumer serves on SB_METRICS_PORT (its own registry, no Redis collectors)."""
    tool = promtool()
    metrics = Metrics("crm-consumer")
    metrics.consumer_events.labels("crm-projector", "identity.verification.approved", "ok").inc()
    metrics.read_cache_observer()(3, 1, 0)
    metrics.observe_request("GET", "/metrics", 200, 0.002)
    text = metrics.render().decode()
    assert "sb_consumer_events_total{" in text
    check = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_alerting_rules_pass_promtool() -> None:
    tool = promtool()
    check = subprocess.run(
        [tool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "max",
    "min",
    "avg",
    "histogram_quantile",
    "le",
    "without",
    "on",
    "and",
    "or",
    "unless",
    "clamp_min",
    "vector",
    "bool",
    "count",
    "topk",
    "offset",
    "delta",
    "deriv",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (identifiers outside label matchers and
    strings, minus PromQL's own words)."""
    stripped = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]|\b\d[\d.eE+-]*", " ", expr)
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped
    )
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped) if w not in PROMQL_WORDS}


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for value in node.values():
            yield from exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from exprs(value)


def test_dashboard_and_alerts_read_metrics_the_services_serve(product: Product) -> None:
    served: set[str] = {"up"}  # Prometheus's own, per scraped target
    for url in product.urls.values():
        text = scrape(url)
        # A family declared without samples counts (no delivery provider with a breaker
        # runs in dev mode): its name is served, its samples come with the condition.
        suffixes = ("", "_total", "_bucket", "_count", "_sum")
        served |= series(text) | {f + s for f in families(text) for s in suffixes}
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    queries = [q for panel in panels for q in exprs(panel)]
    assert len(queries) >= 10
    for panel in panels:
        if panel.get("type") not in ("row", "text"):
            assert list(exprs(panel)), f"panel {panel.get('title')} has no query"
    import yaml

    rules = [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    unknown = {(expr, name) for expr in [*queries, *rules] for name in metric_names(expr) - served}
    assert not unknown, sorted(unknown)


def test_every_log_line_is_json_and_requests_are_logged_by_route(product: Product) -> None:
    # Stopped first, so gunicorn's shutdown lines are read too (this is the module's last test).
    product.stop()
    log_dir = Path(product.log_path).parent / "var" / "log"
    access: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("*.log")):
        text = path.read_text()
        assert SECRET_BODY not in text and SECRET_QUERY not in text, path.name
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{path.name}: not JSON: {line!r}")
            assert isinstance(entry, dict) and entry.get("level"), line
            if entry.get("logger") == "sb.access":
                access.append(entry)
    # gunicorn's own lines (its start, its workers' boots) are JSON in the service's file.
    identity = (log_dir / "identity.log").read_text()
    assert '"logger": "gunicorn.error"' in identity and "Shutting down" in identity
    routes = {(e["service"], e["method"], e["route"], e["status"]) for e in access}
    assert ("identity", "POST", "/v1/verifications/<verification_id>/checks", 200) in routes, routes
    assert ("identity", "GET", "/v1/verifications/<verification_id>", 404) in routes, routes
    assert ("routing", "POST", "/v1/tasks", 201) in routes, routes
    for entry in access:
        assert isinstance(entry["duration_seconds"], float) and entry["duration_seconds"] >= 0
        assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"]), entry
        assert "?" not in entry["route"]
