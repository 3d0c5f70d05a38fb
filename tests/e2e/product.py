"""The whole product as `make run` starts it, on a Redis and a database of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.testing import ROOT, RedisServer, free_port
from tests.conftest import API_KEYS, API_KEYS_ENV


class Product:
    def __init__(self, directory: Path, *, workers: int = 2) -> None:
        self.redis = RedisServer(directory / "redis", persistent=True)
        self.database_url = f"sqlite:///{directory / 'crm.db'}"
        self.ports = {s: free_port() for s in ("identity", "crm", "routing")}
        self.urls = {s: f"http://127.0.0.1:{p}" for s, p in self.ports.items()}
        env = dict(os.environ)
        env.update({f"{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        env.update(
            {
                "SB_ENV": "dev",
                "SB_VAR_DIR": str(directory / "var"),
                "SB_WORKERS": str(workers),
                "REDIS_URL": self.redis.url,
                "DATABASE_URL": self.database_url,
                "API_KEYS": API_KEYS_ENV,
                "SB_INTERNAL_API_KEY": API_KEYS["admin"],
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING",
            }
        )
        self.log_path = directory / "run.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while "Switchboard is running" not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the product did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.redis.stop()


def redis_traces(url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every Redis key whose name or value contains any of ``needles``."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url, decode_responses=True)
    readers = {
        "string": client.get,
        "hash": client.hgetall,
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "list": lambda k: client.lrange(k, 0, -1),
        "stream": client.xrange,
    }
    found: dict[str, list[str]] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        blob = f"{key} {readers[kind](key) if kind in readers else ''}"
        hits = [n for n in needles if n in blob]
        if hits:
            found[f"{kind}:{key}"] = hits
    client.close()
    return found


def sql_traces(database_url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every table with a row that contains any of ``needles`` (any column, as text)."""
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                text = " ".join(str(v) for v in row)
                hits = [n for n in needles if n in text]
                if hits:
                    found.setdefault(table.name, []).extend(hits)
    engine.dispose()
    return found
