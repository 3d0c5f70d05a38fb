"""The shape of the ids identity mints (``v-07...``: prefix, shard, 30 more hex digits).

An id of another shape was never minted, so it is answered as unknown before it becomes
part of a key name ("<vid>:att" named the attempts counter of a real verification).
"""

from __future__ import annotations

import re

MINTED = re.compile(r"[a-z]+-[0-9a-f]{32}")


def is_minted(oid: str, prefix: str) -> bool:
    """Whether ``new_id(prefix, ...)`` could have made ``oid``."""
    return MINTED.fullmatch(oid) is not None and oid.startswith(prefix + "-")
