"""`make run`: the whole product on one machine, with embedded defaults.

Starts a real redis-server (AOF under var/redis) unless REDIS_URL is set,
uses SQLite under var/ unless DATABASE_URL is set, generates dev API keys
(kept in var/dev-api-keys), runs the CRM migrations, then the three services
under gunicorn and their consumers (and the routing dispatcher and the webhook
worker), prints the
URLs and keys, and supervises them. Ctrl-C or SIGTERM stops everything,
the embedded Redis last; a child that dies takes the whole run down so
nothing half-works silently.

``SB_INSTANCES=n`` (default 1) starts n gunicorn instances per service, the
i-th (from 0) on the service's port + 100 * i (identity 8001, 8101, ...), as a
load balancer would see replicas; still one consumer per service.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.supervisor import Supervisor, die_with_parent, port_problems  # noqa: E402
from shared.embedded_redis import RedisServer, free_port  # noqa: E402
from shared.serving import gunicorn_args  # noqa: E402

SERVICES = {"identity": 8001, "crm": 8002, "routing": 8003}
DEV_SCOPES = {
    "admin": "admin",
    "channel": "channel",
    "ivr": "ivr",
    "agent": "agent",
    "internal": "admin",  # the CRM's key for the export endpoints of identity/routing
}


def dev_api_keys(var: Path) -> dict[str, str]:
    path = var / "dev-api-keys"
    if path.exists():
        pairs = (line.split("=", 1) for line in path.read_text().split())
        keys = dict(pairs)
        if set(keys) == set(DEV_SCOPES):
            return keys
    keys = {name: f"dev-{name}-{secrets.token_urlsafe(12)}" for name in DEV_SCOPES}
    path.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return keys


def main() -> int:
    var = Path(os.environ.get("SB_VAR_DIR", ROOT / "var")).resolve()
    log_dir = var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(log_dir)
    sup.install_signal_handlers()
    try:
        return run(sup, var, log_dir)
    finally:
        sup.stop()


def run(sup: Supervisor, var: Path, log_dir: Path) -> int:
    env = dict(os.environ)
    env.setdefault("SB_ENV", "dev")
    if env["SB_ENV"] != "dev" and not env.get("REDIS_URL"):
        # Production mode on an embedded, unauthenticated Redis with generated dev keys
        # printed to the terminal: never what an operator means.
        print(
            f"SB_ENV={env['SB_ENV']}: make run starts an embedded Redis and dev keys, for "
            "development only; set REDIS_URL (and DATABASE_URL, API_KEYS) or unset SB_ENV"
        )
        return 2
    env["SB_VAR_DIR"] = str(var)
    env["PYTHONPATH"] = str(ROOT)
    ports = {s: int(env.get(f"{s.upper()}_PORT", p)) for s, p in SERVICES.items()}
    instances = int(env.get("SB_INSTANCES", "1"))
    binds = {
        f"{service}{f' instance {i + 1}' if i else ''}, {service.upper()}_PORT": port + 100 * i
        for service, port in ports.items()
        for i in range(instances)
    }
    redis_port = 0
    if not env.get("REDIS_URL"):
        redis_port = int(env.get("SB_REDIS_PORT", "0"))
        while not redis_port or (redis_port in binds.values() and "SB_REDIS_PORT" not in env):
            redis_port = free_port()  # never one of the services' (not bound yet)
        binds["embedded redis, SB_REDIS_PORT"] = redis_port
    problems = port_problems(binds)
    if problems:
        print("make run cannot start: " + "; ".join(problems))
        print("stop what holds it (another make run?) or choose other ports with these variables")
        return 2
    if redis_port:
        sup.redis = RedisServer(
            var / "redis", port=redis_port, persistent=True, preexec_fn=die_with_parent
        )
        env["REDIS_URL"] = sup.redis.url
        print(
            f"embedded redis-server (AOF in var/redis) at {sup.redis.url}"
            f"  pid {sup.redis.process.pid}"
        )
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{var / 'crm.db'}"
    keys: dict[str, str] = {}
    if not env.get("API_KEYS"):
        keys = dev_api_keys(var)
        env["API_KEYS"] = ",".join(
            f"dev-{name}:{secret}:{DEV_SCOPES[name]}" for name, secret in keys.items()
        )
        env.setdefault("SB_INTERNAL_API_KEY", keys["internal"])
    env.setdefault("IDENTITY_URL", f"http://127.0.0.1:{ports['identity']}")
    env.setdefault("CRM_URL", f"http://127.0.0.1:{ports['crm']}")
    env.setdefault("ROUTING_URL", f"http://127.0.0.1:{ports['routing']}")

    python = sys.executable
    gunicorn = str(Path(python).parent / "gunicorn")
    if importlib.util.find_spec("services.crm.migrate"):
        print("migrating the CRM database ...")
        subprocess.run([python, "-m", "services.crm.migrate"], cwd=ROOT, env=env, check=True)
    if sup.asked_to_stop:
        return 0

    workers = int(env["SB_WORKERS"]) if env.get("SB_WORKERS") else None  # else shared.serving's
    for service, port in ports.items():
        metrics_dir = var / "prometheus" / service
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        service_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        for i in range(instances):
            sup.spawn(
                service if i == 0 else f"{service}-{i + 1}",
                [
                    gunicorn,
                    "--no-control-socket",
                    "--bind",
                    f"127.0.0.1:{port + 100 * i}",
                    *gunicorn_args(service, workers),
                    "--graceful-timeout",
                    "10",
                    f"services.{service}.app:create_app()",
                ],
                service_env,
                log_dir,
            )
        sup.spawn(
            f"{service}-consumer",
            [python, "-m", f"services.{service}.consumer"],
            service_env,
            log_dir,
        )
    if importlib.util.find_spec("services.routing.dispatcher"):
        sup.spawn("routing-dispatcher", [python, "-m", "services.routing.dispatcher"], env, log_dir)
    # Outgoing webhooks of all three services (docs/webhooks.md).
    sup.spawn("webhook-worker", [python, "-m", "shared.webhooks.worker"], env, log_dir)

    for service, port in ports.items():
        for i in range(instances):
            problem = sup.wait_ready(service, f"http://127.0.0.1:{port + 100 * i}")
            if problem:
                print(problem)
                return 0 if sup.asked_to_stop else 1
    print("\nSwitchboard is running (Ctrl-C stops it):")
    for service, port in ports.items():
        print(f"  {service:<9} http://127.0.0.1:{port}   (OpenAPI: /openapi.json)")
        for i in range(1, instances):
            print(f"  {'':<9} http://127.0.0.1:{port + 100 * i}   (instance {i + 1})")
    if keys:
        print(f"\nDEV API keys (Authorization: Bearer <key>; kept in {var / 'dev-api-keys'}):")
        for name, secret in keys.items():
            print(f"  {name:<9} {secret}   scope {DEV_SCOPES[name]}")
    sys.stdout.flush()
    return sup.watch()


if __name__ == "__main__":
    sys.exit(main())
