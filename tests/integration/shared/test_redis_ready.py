"""The pool's "is this connection clean?" check: cheap under gevent, still strict."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from shared.config import Settings
from shared.redis_conn import connect
from shared.testing import ROOT


def _settings(redis_url: str, tmp_path: object) -> Settings:
    return Settings.from_env(
        {"REDIS_URL": redis_url, "SB_ENV": "test", "SB_VAR_DIR": str(tmp_path)}, service="identity"
    )


def test_a_connection_left_with_an_unread_reply_is_not_handed_out(
    redis_url: str, tmp_path: object
) -> None:
    r = connect(_settings(redis_url, tmp_path))
    r.set("ready:key", "fresh")
    conn = r.connection_pool.get_connection()
    conn.send_command("GET", "ready:key")  # its reply is never read
    r.connection_pool.release(conn)
    assert r.get("ready:key") == "fresh"  # not the stale reply's bytes, nor an error
    assert r.ping() is True


_SWITCHES = """
from gevent import monkey
monkey.patch_all()
import sys
import greenlet
from shared.config import Settings
from shared.redis_conn import connect

r = connect(Settings.from_env(
    {"REDIS_URL": sys.argv[1], "SB_ENV": "test", "SB_VAR_DIR": sys.argv[2]}, service="identity"))
r.ping()
switches = 0
def count(event, args):
    global switches
    switches += 1
greenlet.settrace(count)
for _ in range(200):
    r.ping()
greenlet.settrace(None)
print(switches / 200)
"""


def test_under_gevent_a_checkout_does_not_switch_to_the_hub(
    redis_url: str, tmp_path: object
) -> None:
    # gevent's patched poll() parks the greenlet and wakes it from the hub; the reply's
    # read may still switch (one round trip there and back), the checkout must not.
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SWITCHES), redis_url, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert float(out) <= 2.0, out
