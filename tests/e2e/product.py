"""The whole product as `make run` starts it, on a Redis and a database of the test's own."""

from __future__ import annotations

from pathlib import Path

from shared.testing import Product
from tests.conftest import API_KEYS, API_KEYS_ENV
from tests.redis_scan import redis_entries

__all__ = ["Product", "start_product", "redis_traces", "sql_traces"]


def start_product(directory: Path, *, workers: int = 2) -> Product:
    """The product with the tests' API keys; the CRM exports with the admin key."""
    return Product(directory, API_KEYS_ENV, API_KEYS["admin"], workers=workers)


def redis_traces(url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every Redis key whose name or value (decoded as far as it goes) contains any of
    ``needles``."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url, decode_responses=True)
    found: dict[str, list[str]] = {}
    for label, texts in redis_entries(client):
        blob = "\n".join(texts)
        hits = [n for n in needles if n in blob]
        if hits:
            found[label] = hits
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
