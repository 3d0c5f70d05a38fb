"""Everything a Redis holds, as text, with stored bodies decoded (at-rest and erasure checks)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any


def _expand(text: str) -> list[str]:
    """``text`` plus what base64 and JSON string fields inside it decode to."""
    found = [text]
    # Whole, or after a key id (shared/sealing.py writes ``<key id>.<base64>``).
    for candidate in {text, text.rpartition(".")[2]}:
        try:
            found.append(base64.b64decode(candidate, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            pass
    try:
        data = json.loads(text)
    except ValueError:
        return found
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, str) and value != text:
                found.extend(_expand(value))
    return found


def redis_entries(redis: Any) -> Iterator[tuple[str, list[str]]]:
    """(``type:key``, its texts decoded as far as they go) for every key of the Redis.
    ``redis`` must decode responses."""
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key)
        values: list[str] = []
        if kind == "string":
            values = [redis.get(key)]
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "set":
            values = list(redis.smembers(key))
        elif kind == "zset":
            values = list(redis.zrange(key, 0, -1))
        elif kind == "list":
            values = list(redis.lrange(key, 0, -1))
        elif kind == "stream":
            for _id, fields in redis.xrange(key):
                for field, value in fields.items():
                    values += [field, value]
        texts = [key]
        for value in values:
            if value is not None:
                texts.extend(_expand(value))
        yield f"{kind}:{key}", texts


def redis_text(redis: Any) -> str:
    """All keys and values of the Redis, decoded as far as they go."""
    return "\n".join(text for _label, texts in redis_entries(redis) for text in texts)
