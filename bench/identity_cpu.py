"""Identity, old code against new in the same run: server CPU per TOTP flow.

The target of issue 17 ("speed comes with the carve"): a complete TOTP flow
(start + check) costs at least 40% less server CPU than on the baseline revision,
and no other figure is worse beyond the noise between two runs of the same code.
Absolute figures on this VM move 2-3x between phases (docs/performance.md), so
both versions are served side by side and measured in alternating turns:

- the baseline revision (``--baseline``, else ``$SB_BENCH_BASELINE``, else the
  first word of ``bench/baseline.txt``) is exported with ``git archive`` into a
  temporary directory; the new code is this checkout's working tree;
- each version runs under gunicorn as shipped (``shared.serving``, the same
  interpreter and settings) on a redis-server of its own, its TOTP customers
  enrolled by that version's own ``bench/identity.py``;
- each round drives every kind of load (TOTP flows with wrk and
  ``bench/totp_flow.lua``, then ``/healthz``, introspect, verification-status)
  at one version and right after at the other, the order flipped each round;
- per unit of work: server CPU (gunicorn master + workers and redis-server, from
  ``/proc``) and Redis commands (``INFO stats`` ``total_commands_processed``);
  the change is new / old within each round, and the median over the rounds.

``--baseline`` naming the working tree's own HEAD gives an A/A run: the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
import redis as redis_lib  # noqa: E402

from bench.common import (  # noqa: E402
    GunicornService,
    RedisServer,
    bench_env,
    http_load,
    machine,
    median,
    print_table,
    server_cpu_seconds,
)
from bench.identity import approved_session, auth, totp_flows  # noqa: E402

ROUNDS = int(os.environ.get("SB_BENCH_ROUNDS", "5"))
FLOW_SECONDS = float(os.environ.get("SB_BENCH_FLOW_SECONDS", "3"))
REQUEST_SECONDS = float(os.environ.get("SB_BENCH_SECONDS", "1"))
CONCURRENCY = 32
# Customers per second of flows and version: one flow each (a TOTP code is good once).
# Well above the rate the 2 cores reach, since a wrk thread whose connections land on a
# quiet worker runs ahead of the others and uses up its share first.
CUSTOMERS_PER_SECOND = int(os.environ.get("SB_BENCH_CUSTOMERS_PER_SECOND", "1500"))
TARGET_CPU_CHANGE = -0.40

# Run in a version's own checkout: its bench/identity.py knows how its store seals a factor.
_ENROLL = """
import json, sys
import redis
from bench.identity import build_service, enroll_many
env = json.loads(sys.argv[1])
service = build_service(env, redis.Redis.from_url(env["REDIS_URL"], decode_responses=True))
sys.stdout.write("".join(f"{c} {t.secret}\\n" for c, t in enroll_many(service, int(sys.argv[2]))))
"""


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def baseline_revision(cli: str | None) -> str:
    """The revision the working tree is measured against, as a full commit id."""
    name = cli or os.environ.get("SB_BENCH_BASELINE")
    if not name:
        listed = [
            line.split("#", 1)[0].strip()
            for line in (ROOT / "bench" / "baseline.txt").read_text().splitlines()
        ]
        name = next(word for word in listed if word)
    try:
        return _git("rev-parse", "--verify", f"{name}^{{commit}}")
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"baseline {name!r} is not a commit of this repository") from exc


def working_tree_label() -> str:
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")


@contextmanager
def exported(revision: str, into: Path) -> Iterator[Path]:
    """``revision``'s files in ``into`` (``git archive``: nothing is written to the
    repository, so an interrupted run leaves no worktree to prune)."""
    into.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {revision} failed")
    try:
        yield into
    finally:
        shutil.rmtree(into, ignore_errors=True)


@dataclass
class Sample:
    units: int  # approved flows, or answered requests
    errors: int
    seconds: float
    gunicorn_s: float
    redis_s: float
    commands: int

    def cpu_us(self) -> float:
        return (self.gunicorn_s + self.redis_s) / max(1, self.units) * 1e6

    def redis_us(self) -> float:
        return self.redis_s / max(1, self.units) * 1e6

    def commands_per_unit(self) -> float:
        return self.commands / max(1, self.units)

    def rate(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0


class Version:
    """One revision of identity, served by gunicorn on a redis-server of its own."""

    def __init__(self, label: str, tree: Path, work: Path, stack: ExitStack) -> None:
        self.label, self.tree = label, tree
        self.redis_server = RedisServer(work / "redis")
        self.log_path = work / "gunicorn.log"
        stack.callback(self.redis_server.stop)
        self.env = bench_env(self.redis_server.url, str(work / "var"), PYTHONPATH=str(tree))
        self.redis = redis_lib.Redis.from_url(self.redis_server.url, decode_responses=True)
        self._check_imports()
        self.customers: list[tuple[str, pyotp.TOTP]] = []
        self.app: GunicornService | None = None
        self.stack = stack

    def _run(self, *args: str, **kwargs: object) -> str:
        env = {**os.environ, **self.env}
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            **kwargs,  # type: ignore[arg-type]
        ).stdout

    def _check_imports(self) -> None:
        # An editable install of the project would serve this checkout's code for both.
        where = self._run("-c", "import services.identity.app as m; print(m.__file__)")
        if not Path(where.strip()).resolve().is_relative_to(self.tree.resolve()):
            raise SystemExit(f"{self.label}: identity imported from {where.strip()}")

    def enroll(self, n: int) -> None:
        try:
            out = self._run("-c", _ENROLL, json.dumps(self.env), str(n))
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f"{self.label}: its bench/identity.py could not enroll customers:\n{exc.stderr}"
            ) from exc
        self.customers = [
            (cid, pyotp.TOTP(secret)) for cid, secret in (line.split() for line in out.splitlines())
        ]

    def serve(self) -> None:
        try:
            self.app = GunicornService(
                "services.identity.app:create_app()",
                self.env,
                cwd=self.tree,
                log_path=self.log_path,
            )
        except RuntimeError as exc:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{self.label}: gunicorn did not start ({exc}):\n{log}") from exc
        self.stack.callback(self.app.stop)

    def take(self, n: int) -> list[tuple[str, pyotp.TOTP]]:
        taken, self.customers = self.customers[:n], self.customers[n:]
        if len(taken) < n:
            raise SystemExit(f"{self.label}: out of enrolled customers")
        return taken

    def measure(self, load: Callable[[str], tuple[int, int, float]]) -> Sample:
        assert self.app is not None
        pids = self.app.process.pid, self.redis_server.process.pid
        cpu0 = [server_cpu_seconds(pid) for pid in pids]
        commands0 = int(self.redis.info("stats")["total_commands_processed"])
        units, errors, seconds = load(self.app.url)
        commands1 = int(self.redis.info("stats")["total_commands_processed"])
        cpu1 = [server_cpu_seconds(pid) for pid in pids]
        return Sample(
            units,
            errors,
            seconds,
            cpu1[0] - cpu0[0],
            cpu1[1] - cpu0[1],
            commands1 - commands0 - 1,  # the first INFO
        )


def loads(version: Version, token: str, cid: str) -> dict[str, Callable[[str], tuple]]:
    """The kinds of load a round drives at ``version``: name -> url -> (units, errors, s)."""

    def flows(url: str) -> tuple[int, int, float]:
        result = totp_flows(
            url, version.take(int(CUSTOMERS_PER_SECOND * FLOW_SECONDS)), FLOW_SECONDS
        )
        return result["flows"], result["failed"], result["seconds"]

    def requests(path: str, method: str = "GET", body: object = None) -> Callable:
        def run(url: str) -> tuple[int, int, float]:
            r = http_load(
                url + path,
                method=method,
                body=body,
                headers=auth("ivr") if path != "/healthz" else None,
                concurrency=CONCURRENCY,
                duration=REQUEST_SECONDS,
            )
            return r.requests - r.errors, r.errors, r.seconds

        return run

    return {
        "flow": flows,
        "healthz": requests("/healthz"),
        "introspect": requests("/v1/sessions/introspect", "POST", {"token": token}),
        "status": requests(f"/v1/customers/{cid}/verification-status?channel=chat"),
    }


KINDS = {
    "flow": "TOTP flow (start + check)",
    "healthz": "GET /healthz (control)",
    "introspect": "POST /v1/sessions/introspect",
    "status": "GET .../verification-status",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="revision to compare with (default: bench/baseline.txt)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if not shutil.which("wrk") or os.environ.get("SB_BENCH_NO_WRK"):
        print(
            "wrk is not installed (apt-get install wrk): the TOTP flows come from the "
            "Python client, whose own CPU competes with the servers'",
            flush=True,
        )
    revision = baseline_revision(args.baseline)
    old_label, new_label = f"old {revision[:7]}", f"new {working_tree_label()}"
    flows_per_version = int(CUSTOMERS_PER_SECOND * FLOW_SECONDS) * args.rounds + 1
    began = time.monotonic()

    samples: dict[str, dict[str, list[Sample]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        old_tree = stack.enter_context(exported(revision, Path(tmp) / "old-tree"))
        versions = [
            Version(old_label, old_tree, Path(tmp) / "old", stack),
            Version(new_label, ROOT, Path(tmp) / "new", stack),
        ]
        work: dict[str, dict[str, Callable]] = {}
        for v in versions:
            v.enroll(flows_per_version)
            v.serve()
            cid, totp = v.customers.pop()
            assert v.app is not None
            work[v.label] = loads(v, approved_session(v.app.url, cid, totp), cid)
            samples[v.label] = {kind: [] for kind in KINDS}
        print(
            f"set up in {time.monotonic() - began:.0f} s: {flows_per_version:,} customers "
            f"per version; {args.rounds} rounds",
            flush=True,
        )
        for i in range(args.rounds):
            order = versions if i % 2 == 0 else versions[::-1]
            for kind in KINDS:
                for v in order:
                    samples[v.label][kind].append(v.measure(work[v.label][kind]))
            flows = [samples[v.label]["flow"][-1] for v in versions]
            print(
                f"round {i + 1}: "
                + "; ".join(
                    f"{v.label} {s.rate():,.0f} flows/s, {s.cpu_us() / 1000:.2f} ms/flow"
                    for v, s in zip(versions, flows, strict=True)
                ),
                flush=True,
            )
    report(samples, old_label, new_label, time.monotonic() - began)


def report(samples: dict[str, dict[str, list[Sample]]], old: str, new: str, took: float) -> None:
    rounds = len(samples[old]["flow"])

    def change(kind: str, figure: Callable[[Sample], float]) -> tuple[float, float, float]:
        """Median, least and greatest of the per-round new / old - 1."""
        pairs = [
            figure(n) / figure(o) - 1
            for o, n in zip(samples[old][kind], samples[new][kind], strict=True)
            if figure(o)
        ]
        if not pairs:  # e.g. /healthz sends no Redis command
            return float("nan"), float("nan"), float("nan")
        return median(pairs), min(pairs), max(pairs)

    def pct(c: tuple[float, float, float]) -> str:
        return "" if c[0] != c[0] else f"{c[0]:+.0%} ({c[1]:+.0%} .. {c[2]:+.0%})"

    rows = []
    for kind, label in KINDS.items():
        unit = "flow" if kind == "flow" else "req"
        figures: list[tuple[str, Callable[[Sample], float], str]] = [
            (f"{unit}s/s", Sample.rate, "{:,.0f}"),
            (f"server CPU µs/{unit}", Sample.cpu_us, "{:,.0f}"),
            (f"of which redis-server µs/{unit}", Sample.redis_us, "{:,.0f}"),
            (f"Redis commands/{unit}", Sample.commands_per_unit, "{:.2f}"),
        ]
        for name, figure, fmt in figures:
            o = median([figure(s) for s in samples[old][kind]])
            n = median([figure(s) for s in samples[new][kind]])
            rows.append([label, name, fmt.format(o), fmt.format(n), pct(change(kind, figure))])
        errors = {v: sum(s.errors for s in samples[v][kind]) for v in (old, new)}
        if any(errors.values()):
            rows.append([label, "errors", errors[old], errors[new], ""])
    print_table(
        f"Identity, {old} vs {new}: medians of {rounds} interleaved rounds "
        f"(flows {FLOW_SECONDS:.0f} s, 16 connections; requests {REQUEST_SECONDS:.0f} s, "
        f"{CONCURRENCY} connections; {took:.0f} s in all; {machine()}; "
        f"load average {os.getloadavg()[0]:.1f})",
        ["what", "figure", old, new, "change: median (least .. greatest) of the rounds"],
        rows,
    )
    cpu = change("flow", Sample.cpu_us)[0]
    print(
        f"server CPU per TOTP flow {cpu:+.0%} (target {TARGET_CPU_CHANGE:+.0%}): "
        + ("target met" if cpu <= TARGET_CPU_CHANGE else "target NOT met")
    )


if __name__ == "__main__":
    main()
