"""Notifications: an organization's channels (signed webhooks, Slack and Microsoft Teams incoming
webhooks, e-mail), the events each one receives (its rules), and the daily digest of what is assigned
to each member and due.

A channel is a ``reports.models.WebhookEndpoint`` of a ``kind``; its deliveries are
``WebhookDelivery`` rows sent by the one delivery engine, ``reports.webhooks.services`` (outbox,
retries, circuit breaker, delivery log). This package says what differs per kind:

- ``channels``: the body each kind is sent (the signed JSON event, a Slack message, a Teams
  Adaptive Card, an e-mail), from the same stored event;
- ``services``: creating and changing channels of any kind, and the entry point of the events
  published from below (``orgs.events.SLA_BREACHED``, ``orgs.events.RISK_ACCEPTANCE_EXPIRED``);
- ``digest``: the daily e-mail per member;
- ``views``/``urls`` (console under the organization's settings), ``api``, ``tasks``.
"""
