"""Identity on Redis, one module per area around ``keys.py``; ``store.RedisStore``
combines them for the composition root."""
