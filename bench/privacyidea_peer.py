"""The peer comparison: Switchboard's TOTP flow against privacyIDEA's /validate/check.

Issue 17 wants the ratio measured, not remembered: "Switchboard completes N times
more verifications per second than privacyIDEA". In one run, in alternating turns:

- **Switchboard**: this checkout's identity, as in bench/identity_cpu.py (gunicorn
  as shipped, its own redis-server), complete TOTP flows (start + check) from wrk
  with bench/totp_flow.lua: 16 threads, one connection each;
- **privacyIDEA**: pip-installed into a venv of its own (``var/bench/privacyidea-venv``,
  kept for the next run: it pins other versions of Flask and SQLAlchemy than the
  project), on SQLite, with a flat-file (passwd) resolver of one user per TOTP
  token, under gunicorn ``-w 2`` on loopback; ``POST /validate/check`` with a
  fresh code per request from wrk with bench/pi_check.lua and the same settings.

Both log at WARNING; privacyIDEA keeps its defaults otherwise (its audit log in
SQLite, each entry signed). Server CPU comes from /proc (gunicorn master and workers,
plus redis-server for Switchboard). ``SB_BENCH_PI_VERSION`` pins the privacyIDEA
release (default: the newest that pip installs here).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402

from bench.common import machine, median, print_table, server_cpu_seconds  # noqa: E402
from bench.identity import FLOW_THREADS  # noqa: E402
from bench.identity_cpu import Sample, Version, working_tree_label  # noqa: E402
from shared.embedded_redis import free_port  # noqa: E402

VENV = ROOT / "var" / "bench" / "privacyidea-venv"
INSTANCE = ROOT / "var" / "bench" / "privacyidea-instance"
PI_VERSION = os.environ.get("SB_BENCH_PI_VERSION", "")
ROUNDS = int(os.environ.get("SB_BENCH_PEER_ROUNDS", "3"))
# privacyIDEA answers a few checks a second with 16 connections queued on 2 workers:
# a round must be long enough for many of them to complete.
SECONDS = float(os.environ.get("SB_BENCH_PEER_SECONDS", "8"))
SB_CUSTOMERS_PER_SECOND = 1500  # as bench/identity_cpu.py: far above what 2 cores give
PI_TOKENS = int(os.environ.get("SB_BENCH_PI_TOKENS", "2000"))
REALM = "bench"

_PI_CFG = """import logging, os
INSTANCE = {instance!r}
SQLALCHEMY_DATABASE_URI = 'sqlite:///' + os.path.join(INSTANCE, 'privacyidea.sqlite')
SECRET_KEY = {secret!r}
PI_PEPPER = {pepper!r}
PI_ENCFILE = os.path.join(INSTANCE, 'enckey')
PI_AUDIT_KEY_PRIVATE = os.path.join(INSTANCE, 'private.pem')
PI_AUDIT_KEY_PUBLIC = os.path.join(INSTANCE, 'public.pem')
PI_LOGFILE = os.path.join(INSTANCE, 'privacyidea.log')
PI_LOGLEVEL = logging.WARNING
SUPERUSER_REALM = ['super']
"""

# Run by the privacyIDEA venv's interpreter: one TOTP token per user of the realm,
# through the library (the REST API would need an admin session per call).
_ENROLL = """
import secrets, sys
from privacyidea.app import create_app
from privacyidea.lib.token import init_token
from privacyidea.lib.user import User
app = create_app("production", config_file=sys.argv[1], silent=True)
with app.app_context():
    out = []
    for i in range(int(sys.argv[2])):
        key = secrets.token_hex(20)
        init_token({"type": "totp", "otpkey": key, "genkey": 0, "serial": f"BENCH{i:06d}"},
                   user=User(f"u{i}", realm=sys.argv[3]))
        out.append(f"u{i} {key}\\n")
    sys.stdout.write("".join(out))
"""


def pi_bin(name: str) -> str:
    return str(VENV / "bin" / name)


def ensure_venv() -> str:
    """privacyIDEA's version, installing it into ``VENV`` the first time."""
    if not (VENV / "bin" / "pi-manage").exists():
        print(f"installing privacyIDEA{'==' + PI_VERSION if PI_VERSION else ''} into {VENV}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [pi_bin("python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        requirement = f"privacyIDEA=={PI_VERSION}" if PI_VERSION else "privacyIDEA"
        subprocess.run([*pip, requirement, "gunicorn"], check=True)
    return subprocess.run(
        [pi_bin("python"), "-c", "import importlib.metadata as m; print(m.version('privacyIDEA'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class PrivacyIdea:
    """A privacyIDEA instance in ``instance``: SQLite, a passwd resolver, TOTP tokens."""

    def __init__(self, instance: Path, stack: ExitStack) -> None:
        self.instance = instance
        self.cfg = instance / "pi.cfg"
        self.env = {**os.environ, "PRIVACYIDEA_CONFIGFILE": str(self.cfg)}
        self.env.pop("PYTHONPATH", None)
        self.stack = stack
        self.codes: list[tuple[str, pyotp.TOTP]] = []
        self.rounds_left = ROUNDS

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [pi_bin("pi-manage"), *args],
            env=self.env,
            cwd=self.instance,
            check=True,
            capture_output=True,
        )

    def set_up(self, tokens: int, version: str) -> None:
        """Reuses the instance a run before left with as many tokens: each pi-manage call
        takes 15-30 s on a busy machine, and a TOTP token takes a code of a later step
        after a code of an earlier one, so tokens serve again in a later run."""
        ready = self.instance / "tokens.txt"
        marker = f"privacyIDEA {version}, {tokens} tokens"
        if (self.instance / "ready").is_file() and (self.instance / "ready").read_text() == marker:
            self._load(ready.read_text())
            return
        shutil.rmtree(self.instance, ignore_errors=True)
        self.instance.mkdir(parents=True)
        self.cfg.write_text(
            _PI_CFG.format(
                instance=str(self.instance),
                secret=secrets.token_urlsafe(32),
                pepper=secrets.token_urlsafe(24),
            )
        )
        self._manage("setup", "create_enckey")
        self._manage("setup", "create_audit_keys")
        self._manage("setup", "create_tables")
        passwd = self.instance / "users"
        passwd.write_text(
            "".join(
                f"u{i}:x:{10000 + i}:10000:User {i}:/nonexistent:/bin/false\n"
                for i in range(tokens)
            )
        )
        resolver = self.instance / "resolver.conf"
        resolver.write_text(repr({"fileName": str(passwd)}))
        self._manage("config", "resolver", "create", "benchusers", "passwdresolver", str(resolver))
        self._manage("config", "realm", "create", REALM, "benchusers")
        out = subprocess.run(
            [pi_bin("python"), "-c", _ENROLL, str(self.cfg), str(tokens), REALM],
            env=self.env,
            cwd=self.instance,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ready.write_text(out)
        (self.instance / "ready").write_text(marker)
        self._load(out)

    def _load(self, listing: str) -> None:
        self.codes = [
            (user, pyotp.TOTP(base64.b32encode(bytes.fromhex(key)).decode()))
            for user, key in (line.split() for line in listing.splitlines())
        ]

    def serve(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(self.instance / "gunicorn.log", "ab")  # noqa: SIM115 - closed by the stack
        self.stack.callback(log.close)
        self.process = subprocess.Popen(
            [
                pi_bin("gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "privacyidea.app:create_app(config_name='production', silent=True)",
            ],
            env=self.env,
            cwd=self.instance,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        self.stack.callback(self._stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"privacyIDEA's gunicorn exited; see {self.instance}/gunicorn.log")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.1)
        raise SystemExit("privacyIDEA did not answer within 60 s")

    def warm_up(self, checks: int = 4) -> None:
        """A worker's first check loads privacyIDEA's configuration: not what is measured.
        Its own tokens, so that no code of a measured round is used."""
        spare, self.codes = self.codes[-checks:], self.codes[:-checks]
        for user, totp in spare:
            body = urllib.parse.urlencode({"user": user, "realm": REALM, "pass": totp.now()})
            with urllib.request.urlopen(
                self.url + "/validate/check", data=body.encode(), timeout=120
            ) as response:
                if not json.loads(response.read())["result"].get("value"):
                    raise SystemExit(f"privacyIDEA rejected a fresh code of {user}")

    def _stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def checks(self, seconds: float) -> Sample:
        """``seconds`` of /validate/check with wrk, each request a fresh code."""
        n = len(self.codes) // self.rounds_left
        self.rounds_left -= 1
        batch, self.codes = self.codes[:n], self.codes[n:]
        at = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "codes.txt"
            listing.write_text("".join(f"{user} {totp.at(at)}\n" for user, totp in batch))
            cpu0 = server_cpu_seconds(self.process.pid)
            out = subprocess.run(
                [
                    "wrk",
                    f"-t{FLOW_THREADS}",
                    f"-c{FLOW_THREADS}",
                    f"-d{int(seconds)}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(ROOT / "bench" / "pi_check.lua"),
                    self.url,
                    "--",
                    str(listing),
                    str(FLOW_THREADS),
                    REALM,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cpu1 = server_cpu_seconds(self.process.pid)
        data = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
        if data["exhausted_threads"]:
            raise SystemExit(
                f"privacyIDEA: {n} codes were too few for {seconds} s "
                f"({data['accepted']} accepted): raise SB_BENCH_PI_TOKENS"
            )
        return Sample(data["accepted"], data["rejected"], data["us"] / 1e6, cpu1 - cpu0, 0.0, 0)


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk): it drives both sides")
    began = time.monotonic()
    version = ensure_venv()
    sb_label = f"Switchboard {working_tree_label()}"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pi = PrivacyIdea(INSTANCE, stack)
        pi.set_up(PI_TOKENS, version)
        pi.serve()
        pi.warm_up()
        sb = Version(sb_label, ROOT, Path(tmp) / "switchboard", stack)
        sb.enroll(int(SB_CUSTOMERS_PER_SECOND * SECONDS) * ROUNDS)
        sb.serve()
        print(f"set up in {time.monotonic() - began:.0f} s (privacyIDEA {version})", flush=True)
        from bench.identity import totp_flows

        def flows(url: str) -> tuple[int, int, float]:
            r = totp_flows(url, sb.take(int(SB_CUSTOMERS_PER_SECOND * SECONDS)), SECONDS)
            return r["flows"], r["failed"], r["seconds"]

        rounds: list[tuple[Sample, Sample]] = []
        for i in range(ROUNDS):
            if i % 2 == 0:
                s, p = sb.measure(flows), pi.checks(SECONDS)
            else:
                p, s = pi.checks(SECONDS), sb.measure(flows)
            rounds.append((s, p))
            print(
                f"round {i + 1}: Switchboard {s.rate():,.0f} flows/s ({s.cpu_us() / 1000:.2f} ms "
                f"CPU each); privacyIDEA {p.rate():,.1f} checks/s ({p.cpu_us() / 1000:.1f} ms "
                f"CPU each, {p.errors} rejected)",
                flush=True,
            )
    took = time.monotonic() - began
    rate = median([s.rate() / p.rate() for s, p in rounds if p.rate()])
    cpu = median([p.cpu_us() / s.cpu_us() for s, p in rounds if s.cpu_us()])
    rows = [
        [
            f"{sb_label}: TOTP flow (start + check)",
            f"{median([s.rate() for s, _ in rounds]):,.0f}",
            f"{median([s.cpu_us() for s, _ in rounds]) / 1000:.2f}",
            sum(s.errors for s, _ in rounds),
        ],
        [
            f"privacyIDEA {version}: POST /validate/check (TOTP)",
            f"{median([p.rate() for _, p in rounds]):,.1f}",
            f"{median([p.cpu_us() for _, p in rounds]) / 1000:.1f}",
            sum(p.errors for _, p in rounds),
        ],
    ]
    print_table(
        f"Switchboard vs privacyIDEA, wrk {FLOW_THREADS} threads x 1 connection, medians of "
        f"{ROUNDS} interleaved rounds of {SECONDS:.0f} s ({took:.0f} s in all; {machine()}; "
        f"load average {os.getloadavg()[0]:.1f})",
        ["what", "per second", "server CPU ms each", "failed"],
        rows,
    )
    print(
        f"Switchboard flows/s / privacyIDEA checks/s: {rate:.1f}x (median of the rounds' "
        f"ratios); privacyIDEA's CPU per check / Switchboard's per flow: {cpu:.1f}x (goal 50x)"
    )


if __name__ == "__main__":
    main()
