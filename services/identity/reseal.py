"""``python -m services.identity.reseal``: seal every factor under the current key now.

A read already re-seals the factor it finds in clear (stored before sealing
existed) or under a key of ``IDENTITY_DATA_KEY_PREVIOUS``; this does every
customer's factors at once, so an old key can be dropped without waiting for
each customer to come back. Run it once every instance of the service seals
under the new ``IDENTITY_DATA_KEY`` (one still sealing under the old key puts
factors back under it), then drop the old key when a run reports nothing
re-sealed and nothing changed meanwhile.

Safe beside the running service and safe to repeat: each factor is written
back only while it still holds the value read (see ``adapters/redis/``).
Prints counts only, never a secret. A factor that opens under no configured key
is counted as unopenable and left as it is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from services.identity.adapters.redis.factors import ResealCounts
from services.identity.adapters.redis.store import RedisStore
from services.identity.bootstrap import factor_sealer
from shared.config import Settings
from shared.logs import configure_logging
from shared.redis_conn import connect


def report(counts: ResealCounts) -> str:
    return (
        f"identity factors: {counts.scanned} scanned in {counts.customers} customers, "
        f"{counts.resealed} resealed, {counts.unopenable} unopenable, "
        f"{counts.changed} changed meanwhile"
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.identity.reseal",
        description="Seal every identity factor under the current IDENTITY_DATA_KEY.",
    )
    parser.add_argument(
        "--batch", type=int, default=500, help="keys per SCAN step and per pipelined read"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(environ, service="identity")
    configure_logging("identity-reseal", settings.log_level)
    redis = connect(settings)
    try:
        counts = RedisStore(redis, sealer=factor_sealer(settings)).reseal_all(max(1, args.batch))
    finally:
        redis.close()
    print(report(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
