"""Factors, their data sealed at rest (shared/sealing.py), and TOTP steps."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from redis.exceptions import RedisError

from services.identity.adapters.redis.base import RedisBase, _j, _oldest_first
from services.identity.adapters.redis.keys import (
    FACTORS_MATCH,
    ckey,
    customer_of_factors_key,
    shard_of,
    shard_of_id,
    totp_key,
)
from shared.events import Event

log = logging.getLogger("sb.identity.store")


def _factor_aad(cid: str, fid: str) -> bytes:
    # Binds a sealed value to its customer and factor: copied to another record, it does
    # not open.
    return f"idn:factor:{cid}:{fid}".encode()


@dataclass
class ResealCounts:
    """What a reseal scan found, in factors (hash fields)."""

    customers: int = 0
    scanned: int = 0
    resealed: int = 0  # written back under the current key
    unopenable: int = 0  # open under no configured key, or damaged: left as they are
    changed: int = 0  # changed by another writer between the read and the write-back


class RedisFactors(RedisBase):
    def factors(self, cid: str) -> list[dict[str, Any]]:
        return _oldest_first(self._open_factors(cid, self.r.hgetall(ckey(cid, "factors"))))

    def factor(self, cid: str, fid: str) -> dict[str, Any] | None:
        raw = self.r.hget(ckey(cid, "factors"), fid)
        return self._open_factors(cid, {fid: raw})[fid] if raw else None

    def sealed_factor(self, cid: str, record: Mapping[str, Any]) -> str:
        """The factor record as stored: everything but ``data`` in clear (ids, type,
        status, the masked ``public`` part), ``data`` sealed to this customer and factor."""
        if self.sealer is None:
            raise RuntimeError("this store has no sealer: it cannot write factor data")
        stored = {k: v for k, v in record.items() if k != "data"}
        aad = _factor_aad(cid, record["factor_id"])
        stored["sealed_data"] = self.sealer.seal(_j(record.get("data") or {}).encode(), aad)
        return _j(stored)

    def _unseal(self, cid: str, raw: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the record with ``data`` opened, or None when it opens under no configured
        key; the value to store instead when it is in clear or under an older key)."""
        record: dict[str, Any] = json.loads(raw)
        sealed = record.pop("sealed_data", None)
        if sealed is None:  # stored before factor data was sealed
            return record, (self.sealed_factor(cid, record) if self.sealer else None)
        if self.sealer is None:
            raise RuntimeError("this store has no sealer: it cannot read factor data")
        opened = self.sealer.open(sealed, _factor_aad(cid, record["factor_id"]))
        if opened is None:
            return None, None
        record["data"] = json.loads(opened)
        return record, (None if self.sealer.current(sealed) else self.sealed_factor(cid, record))

    def _sort_out(
        self, cid: str, stored: Mapping[str, str], *, skip_malformed: bool = False
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, tuple[str, str]]]:
        """(each field's record, None where it does not open; ``{field: (value read, value
        to store)}`` for those in clear or under an older key). With ``skip_malformed`` a
        value that is no factor record counts as not opening instead of raising."""
        rows: dict[str, dict[str, Any] | None] = {}
        stale: dict[str, tuple[str, str]] = {}
        for fid, raw in stored.items():
            try:
                record, replacement = self._unseal(cid, raw)
            except (ValueError, KeyError, TypeError):
                if not skip_malformed:
                    raise
                record, replacement = None, None
            if record is not None and replacement is not None:
                stale[fid] = (raw, replacement)
            rows[fid] = record
        return rows, stale

    def _open_factors(
        self, cid: str, stored: Mapping[str, str]
    ) -> dict[str, dict[str, Any] | None]:
        """Each field's record, None where it does not open; those in clear or under an
        older key are re-sealed under the current one."""
        rows, stale = self._sort_out(cid, stored)
        for fid, record in rows.items():
            if record is None:
                # Not under any configured IDENTITY_DATA_KEY (a key dropped too early) or
                # damaged: unusable, so treated as absent rather than failing every request.
                log.error("factor data does not open", extra={"factor_id": fid})
        if stale:
            self._reseal_quietly(cid, stale)
        return rows

    def write_back_factors(self, cid: str, stale: Mapping[str, tuple[str, str]]) -> int:
        """Store each factor's new value, ``{factor_id: (value read, new value)}``, only
        while its field still holds the value read (see ``lua/reseal.lua``); how many were."""
        args = [x for fid, (read, new) in stale.items() for x in (fid, read, new)]
        return int(self._reseal(keys=[ckey(cid, "factors")], args=args))

    def replace_factor_data(
        self, cid: str, record: Mapping[str, Any], data: Mapping[str, Any]
    ) -> bool:
        """Store ``data`` in the factor only while it still is ``record`` as read (the
        compare-and-set of ``write_back_factors``): False when it changed meanwhile."""
        raw = self.r.hget(ckey(cid, "factors"), record["factor_id"])
        current = self._unseal(cid, raw)[0] if raw else None
        if current is None or current != dict(record):
            return False
        new = self.sealed_factor(cid, {**current, "data": dict(data)})
        return self.write_back_factors(cid, {record["factor_id"]: (raw, new)}) == 1

    def _reseal_quietly(self, cid: str, stale: Mapping[str, tuple[str, str]]) -> None:
        try:
            self.write_back_factors(cid, stale)
        except RedisError as exc:
            # A read must not fail for a write it did on the side (a read-only replica,
            # a full or unreachable primary): a later read or the reseal scan retries.
            # Only the error's type: a message may quote the command, i.e. the record.
            log.warning(
                "factor data not re-sealed",
                extra={"factor_ids": sorted(stale), "error": type(exc).__name__},
            )

    def reseal_all(self, batch: int = 500) -> ResealCounts:
        """Re-seal every factor in clear or under an older key, as a read would, without
        waiting for reads: SCAN the factors hashes (on a cluster, every primary), read a
        batch of them in one pipeline, write back each customer's stale factors with the
        same compare-and-set. Idempotent; a hash SCAN returns twice is counted twice."""
        counts = ResealCounts()
        keys = self.r.scan_iter(match=FACTORS_MATCH, count=batch, _type="hash")
        cids = (c for c in map(customer_of_factors_key, keys) if c is not None)
        while chunk := list(islice(cids, batch)):
            with self.r.pipeline(transaction=False) as pipe:
                for cid in chunk:
                    pipe.hgetall(ckey(cid, "factors"))
                found = pipe.execute()
            for cid, stored in zip(chunk, found, strict=True):
                counts.customers += 1
                counts.scanned += len(stored)
                rows, stale = self._sort_out(cid, stored, skip_malformed=True)
                counts.unopenable += sum(record is None for record in rows.values())
                if stale:
                    written = self.write_back_factors(cid, stale)
                    counts.resealed += written
                    counts.changed += len(stale) - written
        return counts

    def save_factor(self, cid: str, record: dict[str, Any], events: list[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(ckey(cid, "factors"), record["factor_id"], self.sealed_factor(cid, record))
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def delete_factor(self, cid: str, fid: str, events: list[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(ckey(cid, "factors"), fid)
            if shard_of_id(fid) == shard_of(cid):
                pipe.delete(totp_key(fid))
            self._stage(pipe, events, shard_of(cid))
            removed = pipe.execute()[0]
        if shard_of_id(fid) != shard_of(cid):  # an id not made here: its step is elsewhere
            self.r.delete(totp_key(fid))
        return bool(removed)

    def accept_step(self, fid: str, step: int) -> bool:
        return bool(self._accept_step(keys=[totp_key(fid)], args=[step]))

    def claims_with_approval(self, cid: str, vid: str, sid: str, fid: str) -> bool:
        """Can ``commit_approval`` claim factor ``fid``'s step in the approval's script? On a
        cluster only when every key is in the customer's slot (ids made here are)."""
        shard = shard_of(cid)
        return not self.cluster or all(shard_of_id(i) == shard for i in (vid, sid, fid))
