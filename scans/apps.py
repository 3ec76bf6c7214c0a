from celery import signals
from django.apps import AppConfig


class ScansConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'scans'

    def ready(self):
        # The pipeline plugs itself into the layers below it, which never import it: how its
        # interventions are retried, the /metrics gauges about its work, the protocols the node filter
        # offers, each worker's presence row, a re-score when an organization's certainty threshold moves.
        from scans import operations
        from scans.discovery import registry
        from scans.findings.scoring import scoring_hooks_connect
        from scans.pipeline import retries, workers

        retries.retry_handlers_register()
        operations.work_gauges_register()
        registry.protocol_names_announce()
        scoring_hooks_connect()
        signals.worker_ready.connect(workers.worker_announce, dispatch_uid="watchpost.worker_presence")
