from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'reports'

    def ready(self):
        # Webhooks subscribe to the events lower layers publish, so none of them imports reports.
        from reports.webhooks.services import webhooks_connect

        webhooks_connect()
        # The pipeline's reporting stage writes the session report through its hook (scans never imports reports).
        from reports.services import session_report_write
        from scans.pipeline.stages import session_report_writer_register

        session_report_writer_register(writer=session_report_write)
