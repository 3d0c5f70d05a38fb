"""Outgoing webhooks (API.md A "Outgoing webhooks"), the same mechanism for every service.

- ``domain``: event-type patterns, the backoff schedule, secrets and the Standard
  Webhooks signature (pure);
- ``targets``: which URLs may be called (SSRF: loopback, private and link-local
  addresses are refused outside dev mode unless allow-listed), checked when a
  subscription is written and again, with the address pinned, at each delivery;
- ``store``: subscriptions, per-subscription queues and the deliveries log in Redis;
- ``sender``: one POST over ``http.client`` to the checked address;
- ``worker``: ``python -m shared.webhooks.worker``, fan-out from each service's stream
  (consumer group ``webhooks``) and in-order delivery per subscription;
- ``api``: the ``/v1/admin/webhooks`` blueprint each service registers.
"""
