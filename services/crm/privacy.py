"""Data protection: a customer's export (ours and the other services') and erasure."""

from __future__ import annotations

from typing import Any, Protocol

from services.crm.common import Context, UseCases, live, view
from services.crm.domain.identifiers import Identifier
from services.crm.domain.merge import record_for_export
from services.crm.ports import (
    CasesTx,
    EventsTx,
    MergesTx,
    OwnedRowsTx,
    PrivacyTx,
    ProfilesTx,
    Row,
)


class ExportTx(ProfilesTx, OwnedRowsTx, MergesTx, Protocol):
    pass


class EraseTx(ProfilesTx, OwnedRowsTx, MergesTx, CasesTx, PrivacyTx, EventsTx, Protocol):
    pass


def export_in(tx: ExportTx, profile_id: str) -> Row:
    row = live(tx, profile_id)
    ids = [profile_id, *tx.profiles_merged_into(profile_id)]
    return {
        "profile": view(tx, row),
        "merged_profile_ids": ids[1:],
        "identifiers": tx.identifiers_of(ids),
        "interactions": tx.rows_of("interactions", ids),
        "cases": tx.rows_of("cases", ids),
        "timeline": tx.rows_of("timeline", ids),
        "merges": [
            {**m, "record": record_for_export(m["record"], m["survivor_id"], m["source_id"], ids)}
            for m in tx.merges_of(ids)
        ],
    }


def erase_in(tx: EraseTx, ctx: Context, profile_id: str) -> list[str]:
    live(tx, profile_id)
    ids = [profile_id, *tx.profiles_merged_into(profile_id)]
    now = ctx.clock()
    held = [Identifier(r["type"], r["value"]) for r in tx.identifiers_of(ids)]
    tx.suppress([ctx.digest(i) for i in held], now + ctx.config.suppression)
    for table in ("identifiers", "interactions", "timeline"):
        tx.delete_of(table, ids)
    if ctx.config.keep_anonymised_cases:
        tx.anonymise_cases(ids)
    else:
        tx.delete_of("cases", ids)
    tx.delete_merges_of(ids)
    tx.delete_candidates_of(ids)
    tx.delete_profiles(ids)
    for pid in ids:
        ctx.event(tx, "crm.profile.erased", {"profile_id": pid})
    return ids


class Privacy(UseCases):
    def export(self, profile_id: str) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": "switchboard.crm.export/1",
            "customer_id": profile_id,
            "generated_at": self.clock(),
        }
        document.update(self.run(lambda tx: export_in(tx, profile_id)))
        services: dict[str, Any] = {}
        for name, peer in self.peers.items():  # PeerUnavailable propagates: no partial export
            services[name] = {
                cid: peer.fetch(cid) for cid in [profile_id, *document["merged_profile_ids"]]
            }
        document["services"] = services
        return document

    def erase(self, profile_id: str) -> list[str]:
        """Erase a customer here; returns every profile id erased (with tombstones)."""
        ctx = self.ctx
        return self.run(lambda tx: erase_in(tx, ctx, profile_id))

    def compact_after_erasure(self) -> None:
        """The deletes are done: ask for the files (AOF, WAL, dead tuples) to follow."""
        if self.compactor is not None:
            self.compactor.request()
