from celery import signals
from django.apps import AppConfig

from orgs.events import NODE_CRITICALITY_CHANGED, SETTINGS_CHANGED, event_subscribe


class ScansConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'scans'

    def ready(self):
        # The pipeline plugs itself into the layers below it, which never import it: how its
        # interventions are retried, the /metrics gauges about its work, the protocols the node filter
        # offers, each worker's presence row, a re-score when an organization's certainty threshold moves,
        # the findings' priority when a node's criticality changes.
        from scans import operations
        from scans.discovery import registry
        from scans.findings.priority import nodes_reprioritize
        from scans.findings.scoring import scoring_hooks_connect
        from scans.findings.sla import sla_on_settings_changed
        from scans.pipeline import execution, retries, zones

        retries.retry_handlers_register()
        operations.work_gauges_register()
        registry.protocol_names_announce()
        scoring_hooks_connect()
        # A node's criticality (nodes, below) is an input of its findings' priority.
        event_subscribe(NODE_CRITICALITY_CHANGED, nodes_reprioritize)
        # An organization's SLA policy (orgs, below) sets its open findings' due dates.
        event_subscribe(SETTINGS_CHANGED, sla_on_settings_changed)
        # A worker checks its zone (WATCHPOST_ZONE) before consuming, then beats its presence row.
        signals.celeryd_after_setup.connect(zones.worker_zone_check, dispatch_uid="watchpost.worker_zone")
        signals.worker_ready.connect(execution.worker_started, dispatch_uid="watchpost.worker_presence")
        signals.worker_shutdown.connect(execution.worker_stopping, dispatch_uid="watchpost.worker_withdraw")
