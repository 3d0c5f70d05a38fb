"""All of identity's Redis areas on one connection (built in bootstrap only)."""

from __future__ import annotations

from services.identity.adapters.redis.codes import RedisCodes
from services.identity.adapters.redis.devices import RedisDevices
from services.identity.adapters.redis.outbox import RedisOutbox
from services.identity.adapters.redis.policies import RedisPolicies
from services.identity.adapters.redis.reporting import RedisReporting
from services.identity.adapters.redis.sessions import RedisSessions
from services.identity.adapters.redis.verifications import RedisVerifications


class RedisStore(
    RedisVerifications,
    RedisPolicies,
    RedisCodes,
    RedisSessions,
    RedisDevices,
    RedisReporting,
    RedisOutbox,
):
    """Each base is one area's adapter; they share the connection, cache and sealer."""
