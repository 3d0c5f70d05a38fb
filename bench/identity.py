"""Identity benchmark: token checks and TOTP flows beside a trivial endpoint.

Served by gunicorn as it ships (shared/serving.py: sync workers, 2 x cores + 1)
on an embedded Redis, all in this run:

- GET /healthz of the same app: the baseline (what Flask + gunicorn cost);
- POST /v1/sessions/introspect and GET .../verification-status, 32 connections;
- offline token verifications per second in-process (PyJWT EdDSA, pinned key);
- the CPU time one request of each kind costs in-process (no sockets), a figure
  that the machine's bursts of throttling do not move the way req/s moves; for
  the TOTP flow, one start + check;
- verification-status polled over a fresh connection each time, without and then
  under 200 connections trickling headers and 20 trickling a body (bench/slow_clients.py);
- complete TOTP flows per second over HTTP (wrk with bench/totp_flow.lua, 16
  connections): POST /v1/verifications then
  POST .../checks with a fresh code, one pre-enrolled customer per flow; and the
  server CPU (gunicorn and redis-server, from /proc) each flow cost under that
  load, which bounds the flows/s the machine's cores can give.

Targets (2 cores): introspect and status >= 60% of the baseline's requests/s
with p99 <= 20 ms; >= 500 complete TOTP flows/s; status p99 <= 50 ms under the
trickle attack.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
import redis as redis_lib  # noqa: E402

from bench.common import (  # noqa: E402
    BENCH_KEYS,
    GunicornService,
    LoadResult,
    RedisServer,
    bench_env,
    http_load,
    machine,
    median,
    percentile,
    print_table,
    server_cpu_seconds,
    wsgi_call,
    wsgi_cpu_us,
)
from bench.slow_clients import row as trickle_row  # noqa: E402
from bench.slow_clients import status_under_trickle  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.events import STREAMS  # noqa: E402

# Many short rounds, each endpoint right after its baseline: this VM's CPU is
# throttled in bursts of a few seconds, and a ratio is only fair within a round.
DURATION = float(os.environ.get("SB_BENCH_SECONDS", "1"))
ROUNDS = int(os.environ.get("SB_BENCH_ROUNDS", "9"))
CONCURRENCY = 32
FLOW_CUSTOMERS = 30_000  # a thread whose connection landed on a quiet worker runs ahead
FLOW_THREADS = 16
IN_PROCESS_FLOWS = 800  # 4 x 200: a warm-up share and 3 measured rounds


def auth(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BENCH_KEYS[scope]}", "Content-Type": "application/json"}


def build_service(env: dict[str, str], redis: redis_lib.Redis):  # noqa: ANN201
    from services.identity.bootstrap import build
    from shared.bus import EventPublisher

    settings = Settings.from_env(env, service="identity")
    return build(settings, redis, EventPublisher(redis, STREAMS["identity"]))


def enroll_many(service, n: int) -> list[tuple[str, pyotp.TOTP]]:  # noqa: ANN001
    """Active TOTP factors written straight through the store (setup, not measured)."""
    from services.identity.adapters.redis.keys import ckey
    from services.identity.domain.otp import new_base32_secret

    out = []
    pipe = service.store.r.pipeline(transaction=False)
    now = time.time()
    for i in range(n):
        cid, secret = f"bench-{i}", new_base32_secret()
        record = {
            "factor_id": service.store.new_id("f", cid),
            "type": "totp",
            "status": "active",
            "created_at": now,
            "data": {"secret": secret},
            "public": {},
        }
        pipe.hset(
            ckey(cid, "factors"), record["factor_id"], service.store.sealed_factor(cid, record)
        )
        out.append((cid, pyotp.TOTP(secret)))
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    return out


def approved_session(url: str, cid: str, totp: pyotp.TOTP) -> str:
    """The session token of one complete TOTP flow of ``cid`` over HTTP."""
    conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"))
    try:
        conn.request(
            "POST",
            "/v1/verifications",
            headers=auth("channel"),
            body=json.dumps({"customer_id": cid, "channel": "chat"}),
        )
        vid = json.loads(conn.getresponse().read())["verification_id"]
        conn.request(
            "POST",
            f"/v1/verifications/{vid}/checks",
            headers=auth("channel"),
            body=json.dumps({"factor": "totp", "code": totp.now()}),
        )
        return str(json.loads(conn.getresponse().read())["session_token"])
    finally:
        conn.close()


def totp_flows(url: str, customers: list[tuple[str, pyotp.TOTP]], seconds: float) -> dict:
    """Complete flows per second: through wrk (C, like every other figure here) when it is
    installed, else through a threaded Python client, whose own CPU then competes with the
    server's for the 2 cores and lowers the figure."""
    wrk = shutil.which("wrk")
    if wrk and not os.environ.get("SB_BENCH_NO_WRK"):
        return _wrk_totp_flows(wrk, url, customers, seconds)
    return _python_totp_flows(url, customers, seconds)


def _wrk_totp_flows(
    wrk: str, url: str, customers: list[tuple[str, pyotp.TOTP]], seconds: float
) -> dict:
    # Codes are taken now, before the load: the server accepts the previous step's code
    # too (the +-1 window), so a run shorter than one 30 s step never sends a stale code.
    assert seconds < 30
    at = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "customers.txt"
        listing.write_text("".join(f"{cid} {totp.at(at)}\n" for cid, totp in customers))
        script = Path(tmp) / "flow.lua"
        script.write_text(
            "".join(
                f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
                for k, v in auth("channel").items()
            )
            + (ROOT / "bench" / "totp_flow.lua").read_text()
        )
        out = subprocess.run(
            [
                wrk,
                f"-t{FLOW_THREADS}",
                f"-c{FLOW_THREADS}",
                f"-d{int(seconds)}s",
                "-s",
                str(script),
                url,
                "--",
                str(listing),
                str(FLOW_THREADS),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    data = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    if data["exhausted_threads"]:
        raise SystemExit(
            f"TOTP flows: {len(customers)} customers were too few for {seconds} s "
            f"({data['flows']} approved, {data['failed']} failed)"
        )
    return {
        "flows": data["flows"],
        "failed": data["failed"],
        "seconds": data["us"] / 1e6,
        "p50": data["p50"],
        "p99": data["p99"],
        "driver": "wrk",
    }


def _python_totp_flows(url: str, customers: list[tuple[str, pyotp.TOTP]], seconds: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in customers:
        work.put(item)
    stop_at = time.perf_counter() + seconds
    done, failed, latencies = [0], [0], []
    lock = threading.Lock()

    def post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
        conn.request("POST", path, body=json.dumps(body), headers=auth("channel"))
        response = conn.getresponse()
        return json.loads(response.read())

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        ok = bad = 0
        local = []
        while time.perf_counter() < stop_at:
            try:
                cid, totp = work.get_nowait()
            except queue.Empty:
                break
            began = time.perf_counter()
            try:
                v = post(conn, "/v1/verifications", {"customer_id": cid, "channel": "chat"})
                r = post(
                    conn,
                    f"/v1/verifications/{v['verification_id']}/checks",
                    {"factor": "totp", "code": totp.now()},
                )
                if r.get("status") == "approved":
                    ok += 1
                else:
                    bad += 1
            except (OSError, http.client.HTTPException, KeyError, ValueError):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            local.append(time.perf_counter() - began)
        with lock:
            done[0] += ok
            failed[0] += bad
            latencies.extend(local)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(FLOW_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {
        "flows": done[0],
        "failed": failed[0],
        "seconds": elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "driver": "Python client",
    }


def offline_verifications(service, token: str, seconds: float = 2.0) -> float:  # noqa: ANN001
    """Full signature checks: a TokenService without the verified-token cache."""
    from services.identity.adapters.jwt_tokens import TokenService

    tokens = TokenService(service.tokens.keys, service.tokens.issuer, cache_size=0)
    n, stop_at = 0, time.perf_counter() + seconds
    began = time.perf_counter()
    while time.perf_counter() < stop_at:
        for _ in range(200):
            assert tokens.verify(token) is not None
        n += 200
    return n / (time.perf_counter() - began)


def kba_answer_checks(n: int = 15) -> dict[str, dict[str, float]]:
    """One knowledge answer checked (a right one), Argon2id at the service's parameters
    against the PBKDF2-SHA256 60k it replaced, interleaved in one run: wall p50/p99 (ms),
    this thread's CPU per check (us)."""
    from services.identity.adapters.argon2_answers import Argon2Answers
    from services.identity.domain import kba

    pepper = b"bench-pepper"
    argon2 = Argon2Answers(pepper)
    stored = {"argon2id": argon2.hash("Rex"), "pbkdf2": kba.hash_answer("Rex", pepper=pepper)}
    checks = {
        "argon2id": lambda: argon2.verify("rex", stored["argon2id"])[0],
        "pbkdf2": lambda: kba.verify_answer("rex", stored["pbkdf2"], pepper=pepper),
    }
    wall: dict[str, list[float]] = {k: [] for k in checks}
    cpu: dict[str, list[float]] = {k: [] for k in checks}
    for _ in range(n):
        for name, check in checks.items():
            began, began_cpu = time.perf_counter(), time.thread_time()
            assert check()
            wall[name].append((time.perf_counter() - began) * 1000)
            cpu[name].append((time.thread_time() - began_cpu) * 1e6)
    return {
        k: {
            "p50": median(wall[k]),
            "p99": sorted(wall[k])[-1],  # of n samples: the worst
            "cpu_us": median(cpu[k]),
        }
        for k in checks
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp) / "redis")
        try:
            env = bench_env(redis_server.url, str(Path(tmp) / "var"))
            redis = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
            service = build_service(env, redis)  # also creates the dev keys gunicorn will share
            customers = enroll_many(service, FLOW_CUSTOMERS + IN_PROCESS_FLOWS)
            spare, customers = customers[:IN_PROCESS_FLOWS], customers[IN_PROCESS_FLOWS:]
            with GunicornService("services.identity.app:create_app()", env) as app:
                # One approved session to introspect and to ask the status of.
                cid, totp = customers.pop()
                token = approved_session(app.url, cid, totp)

                rounds: list[tuple[LoadResult, LoadResult, LoadResult]] = []
                for _ in range(ROUNDS):
                    base = http_load(
                        app.url + "/healthz", concurrency=CONCURRENCY, duration=DURATION
                    )
                    intro = http_load(
                        app.url + "/v1/sessions/introspect",
                        method="POST",
                        body={"token": token},
                        headers=auth("ivr"),
                        concurrency=CONCURRENCY,
                        duration=DURATION,
                    )
                    status = http_load(
                        app.url + f"/v1/customers/{cid}/verification-status?channel=chat",
                        headers=auth("ivr"),
                        concurrency=CONCURRENCY,
                        duration=DURATION,
                    )
                    rounds.append((base, intro, status))
                trickle = status_under_trickle(
                    app.url + f"/v1/customers/{cid}/verification-status?channel=chat",
                    app.port,
                    auth("ivr"),
                    auth("ivr"),
                )
                # Server CPU per flow under load, from /proc: steadier than flows/s on a
                # machine whose speed varies, and it says what the 2 cores can give.
                pids = app.process.pid, redis_server.process.pid
                cpu0 = [server_cpu_seconds(pid) for pid in pids]
                flows = totp_flows(app.url, customers, 8.0)
                cpu1 = [server_cpu_seconds(pid) for pid in pids]
                done = max(1, flows["flows"])
                flows["gunicorn_us"] = (cpu1[0] - cpu0[0]) / done * 1e6
                flows["redis_us"] = (cpu1[1] - cpu0[1]) / done * 1e6
            cpu = in_process_cpu(env, token, cid, spare)
            offline = offline_verifications(service, token)
            answers = kba_answer_checks()
        finally:
            redis_server.stop()

    for i, (b, n, st) in enumerate(rounds, 1):
        print(
            f"round {i}: baseline {b.rps:,.0f}/s p99 {b.p99_ms:.1f} ms; introspect "
            f"{n.rps / b.rps:.0%} p99 {n.p99_ms:.1f} ms; status {st.rps / b.rps:.0%} "
            f"p99 {st.p99_ms:.1f} ms"
        )
    # Each figure is the median over the rounds; a ratio is taken within its round.
    results = {}
    for col, name in enumerate(("healthz", "introspect", "status")):
        results[name] = {
            "rps": median([r[col].rps for r in rounds]),
            "ratio": median([r[col].rps / r[0].rps for r in rounds if r[0].rps]),
            "p50": median([r[col].p50_ms for r in rounds]),
            "p99": median([r[col].p99_ms for r in rounds]),
            "errors": sum(r[col].errors for r in rounds),
        }
    rows = []
    for label, name in (
        ("GET /healthz (baseline)", "healthz"),
        ("POST /v1/sessions/introspect", "introspect"),
        ("GET .../verification-status", "status"),
    ):
        r = results[name]
        rows.append(
            [
                label,
                f"{r['rps']:,.0f}",
                f"{r['ratio']:.0%}",
                f"{r['p50']:.2f}",
                f"{r['p99']:.2f}",
                f"{cpu[name]:.0f}",
                r["errors"],
            ]
        )
    rows.append(
        [
            f"TOTP flow (start + check), {FLOW_THREADS} connections, {flows['driver']}",
            f"{flows['flows'] / flows['seconds']:,.0f} flows/s",
            "",
            f"{flows['p50']:.2f}",
            f"{flows['p99']:.2f}",
            f"{cpu['flow']:.0f}",
            flows["failed"],
        ]
    )
    rows.append(trickle_row(trickle))
    rows.append(
        ["token verify (EdDSA, uncached), in-process", f"{offline:,.0f} /s", "", "", "", "", 0]
    )
    for name, label in (
        ("argon2id", "KBA answer check, Argon2id m=19 MiB t=2 p=1, in-process"),
        ("pbkdf2", "KBA answer check, PBKDF2-SHA256 60k (before), in-process"),
    ):
        a = answers[name]
        rows.append(
            [
                label,
                f"{1000 / a['p50']:,.0f} /s",
                "",
                f"{a['p50']:.1f}",
                f"{a['p99']:.1f}",
                f"{a['cpu_us']:,.0f}",
                0,
            ]
        )
    print_table(
        f"Identity, {CONCURRENCY} connections, medians of {ROUNDS} interleaved rounds of "
        f"{DURATION:.0f} s ({machine()})",
        ["what", "throughput", "vs baseline", "p50 ms", "p99 ms", "CPU us/req", "errors"],
        rows,
    )
    server = flows["gunicorn_us"] + flows["redis_us"]
    print(
        f"TOTP flows under load: {server:,.0f} us of server CPU per flow (gunicorn "
        f"{flows['gunicorn_us']:,.0f}, redis-server {flows['redis_us']:,.0f}; in-process "
        f"{cpu['flow']:,.0f}): {os.cpu_count()} cores give at most "
        f"{(os.cpu_count() or 1) * 1e6 / server:,.0f} flows/s before the load generator's share"
    )
    intro, status = results["introspect"], results["status"]
    ok = (
        intro["ratio"] >= 0.6
        and status["ratio"] >= 0.6
        and intro["p99"] <= 20
        and status["p99"] <= 20
        and flows["flows"] / flows["seconds"] >= 500
        and trickle["attack_p99"] <= 50
        and not trickle["attack_failed"]
    )
    print("targets met" if ok else "targets NOT met (see table)")


def in_process_cpu(
    env: dict[str, str], token: str, cid: str, spare: list[tuple[str, pyotp.TOTP]]
) -> dict[str, float]:
    """CPU per request of the same three requests through the app in this process, and
    per TOTP flow (start + check), each flow with a customer of its own."""
    from services.identity.app import create_app

    app = create_app(Settings.from_env(env, service="identity"))
    ivr = auth("ivr")
    return {
        "flow": wsgi_flow_cpu_us(app, spare),
        "healthz": wsgi_cpu_us(app, "GET", "/healthz"),
        "introspect": wsgi_cpu_us(
            app, "POST", "/v1/sessions/introspect", ivr, json.dumps({"token": token}).encode()
        ),
        "status": wsgi_cpu_us(
            app, "GET", f"/v1/customers/{cid}/verification-status?channel=chat", ivr
        ),
    }


def wsgi_flow_cpu_us(app: Any, customers: list[tuple[str, pyotp.TOTP]], rounds: int = 3) -> float:
    """This thread's CPU per complete TOTP flow through the WSGI stack: the least of
    ``rounds`` runs over equal shares of ``customers``."""
    channel = auth("channel")
    share = len(customers) // (rounds + 1)

    def flow(cid: str, totp: pyotp.TOTP) -> None:
        body = json.dumps({"customer_id": cid, "channel": "chat"}).encode()
        status, out = wsgi_call(app, "POST", "/v1/verifications", channel, body)
        assert status.startswith("201"), out
        vid = json.loads(out)["verification_id"]
        body = json.dumps({"factor": "totp", "code": totp.now()}).encode()
        status, out = wsgi_call(app, "POST", f"/v1/verifications/{vid}/checks", channel, body)
        assert json.loads(out)["status"] == "approved", out

    for customer in customers[:share]:  # warm-up
        flow(*customer)
    best = float("inf")
    for i in range(1, rounds + 1):
        began = time.thread_time()
        for customer in customers[i * share : (i + 1) * share]:
            flow(*customer)
        best = min(best, (time.thread_time() - began) / share * 1e6)
    return best


if __name__ == "__main__":
    main()
