"""Signed webhooks, the reporting stage's way out of the system: an organization's endpoints, the
deliveries made of the domain events lower layers publish, their console pages and API.

``services`` (writes, reads, signing and delivery), ``views`` and ``urls`` (console, under the
organization's settings), ``api`` (``/api/v1/webhooks/``), ``tasks`` (Celery adapters). The models
are ``orgs.models.WebhookEndpoint`` and ``WebhookDelivery``, organization settings that stay
where their tables were made.
"""
