from django.apps import AppConfig


class ScansConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'scans'

    def ready(self):
        # The pipeline says how its interventions are retried, so interventions never import it.
        from interventions.services import retry_handler_register
        from scans.pipeline.retries import RETRIED_KINDS, intervention_retry_work

        retry_handler_register(kinds=RETRIED_KINDS, handler=intervention_retry_work)
