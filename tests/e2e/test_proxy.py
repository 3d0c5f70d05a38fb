"""deploy/nginx/nginx.conf, the proxy docker-compose.yml puts in front of the services,
run for real (its addresses swapped for loopback ports) before the product as `make
run` serves it: the trickle attack through it, X-Request-ID, the body limit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.testing import ROOT, free_port
from tests.e2e.product import Product, start_product
from tests.e2e.slow_clients import H, assert_status_answers, attack, verified_customer

CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
SERVICES = {"identity": 8001, "crm": 8002, "routing": 8003}


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("CI") == "true":  # .ci/run installs it: its absence is a failure there
        pytest.fail("nginx is not installed (.ci/run installs nginx-light)")
    pytest.skip("nginx is not installed here (apt-get install nginx-light); CI runs this test")


def local_conf(directory: Path, upstreams: dict[str, int]) -> tuple[Path, dict[str, int]]:
    """The compose config with loopback addresses, its files under ``directory``."""
    text = CONF.read_text()
    ports = {name: free_port() for name in (*SERVICES, "health")}
    for name, port in SERVICES.items():
        text = text.replace(f"server {name}:{port};", f"server 127.0.0.1:{upstreams[name]};")
        text = text.replace(f"listen {port};", f"listen 127.0.0.1:{ports[name]};")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{ports['health']};")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {directory / 'nginx.pid'};")
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temp, 1)
    if os.geteuid() == 0:  # workers would run as nobody, locked out of the test's files
        text = "user root;\n" + text
    assert all(f"127.0.0.1:{p}" in text for p in ports.values())
    path = directory / "nginx.conf"
    path.write_text(text)
    return path, ports


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Product, dict[str, int]]]:
    nginx = nginx_binary()
    directory = tmp_path_factory.mktemp("proxy")
    product = start_product(directory, workers=None)  # the layout `make run` ships
    conf, ports = local_conf(directory, product.ports)
    log = open(directory / "nginx.log", "w")  # noqa: SIM115 - closed below
    proxy = subprocess.Popen(
        [nginx, "-p", str(directory), "-c", str(conf), "-g", "daemon off;", "-e", "stderr"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proxy.poll() is None, (directory / "nginx.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{ports['health']}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "nginx did not come up"
                time.sleep(0.1)
        yield product, ports
    finally:
        proxy.terminate()
        proxy.wait(30)
        log.close()
        product.stop()


def test_verification_status_answers_through_the_proxy_while_connections_trickle(
    proxied: tuple[Product, dict[str, int]],
) -> None:
    product, ports = proxied
    front = f"http://127.0.0.1:{ports['identity']}"
    sid = verified_customer(front, "c-proxy-1")
    polls = attack(
        ports["identity"], front + "/v1/customers/c-proxy-1/verification-status?channel=chat"
    )
    assert_status_answers(polls, sid)


def test_the_proxy_passes_request_ids_and_refuses_big_bodies_as_problems(
    proxied: tuple[Product, dict[str, int]],
) -> None:
    _, ports = proxied
    for name in SERVICES:
        front = f"http://127.0.0.1:{ports[name]}"
        rid = f"proxy-{name}-0123456789abcdef"
        r = httpx.get(front + "/readyz", headers={"X-Request-ID": rid})
        assert r.status_code == 200 and r.headers["X-Request-ID"] == rid
        # Without one, nginx's own id reaches the service (32 hex digits).
        assert re.fullmatch(r"[0-9a-f]{32}", httpx.get(front + "/readyz").headers["X-Request-ID"])
        big = httpx.post(
            front + "/v1/sessions/introspect",
            content=b'{"token": "' + b"a" * (1024 * 1024 + 1) + b'"}',
            headers={**H["ivr"], "Content-Type": "application/json"},
            timeout=30,
        )
        assert big.status_code == 413
        assert big.headers["Content-Type"].startswith("application/problem+json")
        assert big.json()["status"] == 413
