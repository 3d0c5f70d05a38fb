"""CPU-heavy calls that must not stall a gevent worker's other requests.

Under gunicorn's gevent workers (``shared/serving.py``) one OS thread runs every request
of a worker; a 40 ms Argon2id check would hold all of them, status polls included. C
code that releases the GIL (argon2-cffi, hashlib's PBKDF2) runs instead on the hub's
thread pool, and the worker goes on serving while it computes. Outside gevent (tests,
sync or thread workers) the call is made directly: nothing to keep free there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: object) -> T:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return fn(*args)
    import gevent

    result: T = gevent.get_hub().threadpool.apply(fn, args)
    return result
